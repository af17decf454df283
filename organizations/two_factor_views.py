"""The log-in steps (password, then a code or setting an app up) and the two-factor pages of the
account page. The rules are in organizations/two_factor.py."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN, redirect_to_login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from organizations import actions, two_factor
from organizations.forms import EmailAuthenticationForm
from organizations.two_factor_forms import AppCodeForm, CodeForm

MODEL_BACKEND = two_factor.MODEL_BACKEND
SETUP_DEVICE_KEY = "kodo_two_factor_setup_device"


class LoginView(auth_views.LoginView):
    """Django's log in, whose password step may stop short of signing in (two_factor)."""

    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        return two_factor.begin_sign_in(
            self.request, user, backend=user.backend, next_url=self.get_redirect_url()
        )


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Setting a password from an invitation (or a reset) link signs the person in, through the
    code step or the app set-up when their account needs one."""

    def form_valid(self, form):
        user = form.save()
        del self.request.session[INTERNAL_RESET_SESSION_TOKEN]
        messages.success(self.request, "Your password is set.")
        if not user.is_active:  # a disabled account keeps its password but stays out
            return redirect("login")
        return two_factor.begin_sign_in(self.request, user, backend=MODEL_BACKEND)


def admin_login(request):
    """The Django admin's log in is Kodo's (with its second step), never a way around it."""
    if request.user.is_authenticated:
        return redirect("kodo:home")
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"))


def _locked_out(request):
    return render(request, "registration/locked_out.html", status=429)


def _back_to_log_in(request):
    if request.user.is_authenticated:
        return redirect("kodo:home")
    messages.info(request, "Log in again: the sign-in was not finished in time.")
    return redirect("login")


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def login_code(request):
    """Second step: the code of the authenticator app, or a recovery code (used up)."""
    user = two_factor.pending_user(request)
    if user is None:
        return _back_to_log_in(request)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if two_factor.is_locked_out(request, user):
            request.session.pop(two_factor.PENDING_KEY, None)
            return _locked_out(request)
        try:
            device = two_factor.verify_code(user, form.cleaned_data["code"])
        except two_factor.Throttled:
            form.add_error("code", "Too many wrong codes in a row: wait a few seconds, then try.")
        else:
            if device is not None:
                next_url = two_factor.pending_next(request)
                two_factor.complete_sign_in(request, user, backend=MODEL_BACKEND, device=device)
                two_factor.after_verified(request, user, device)
                return redirect(two_factor.safe_next(request, next_url))
            if two_factor.record_refused_code(request, user):
                return _locked_out(request)
            form.add_error(
                "code",
                "This code is not right. Enter the code your app shows now (it changes every "
                "30 seconds), or an unused recovery code.",
            )
    return render(request, "registration/two_factor_code.html", {"form": form, "email": user.email})


def _setup_page(request, device, form, template_context):
    return render(
        request,
        "registration/two_factor_setup.html",
        {
            "form": form,
            "qr_code": two_factor.qr_data_uri(device),
            "secret": two_factor.secret_text(device),
            **template_context,
        },
    )


def _turn_on_with_posted_code(request, user, device):
    """The set-up form, and the new recovery codes once the code it posted turns the app on
    (None on a GET or a wrong code, which the form then says)."""
    form = AppCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = actions.do_turn_on_two_factor(
            request=request, user=user, device=device, code=form.cleaned_data["code"]
        )
        if codes is not None:
            return form, codes
        form.add_error("code", "This code is not right. Enter the six digits the app shows now.")
    return form, None


def _show_codes(request, codes, next_url=""):
    request.session[two_factor.NEW_CODES_KEY] = {"codes": codes, "next": next_url}
    return redirect("organizations:two-factor-recovery-codes")


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def login_setup(request):
    """After the password, for an administrator who must use two-factor sign-in and has no app
    yet: set one up now; nothing else is reachable before."""
    user = two_factor.pending_user(request)
    if user is None:
        return _back_to_log_in(request)
    if two_factor.has_two_factor(user):
        return redirect("organizations:two-factor-code")
    pending = request.session[two_factor.PENDING_KEY]
    device = two_factor.unconfirmed_authenticator(user, pending.get("device"))
    if device is None:
        device = two_factor.new_authenticator(user)
        pending["device"] = device.pk
        request.session.modified = True
    form, codes = _turn_on_with_posted_code(request, user, device)
    if codes is not None:
        next_url = two_factor.pending_next(request)
        two_factor.complete_sign_in(request, user, backend=MODEL_BACKEND, device=device)
        return _show_codes(request, codes, two_factor.safe_next(request, next_url))
    return _setup_page(
        request,
        device,
        form,
        {"required": True, "action": reverse("organizations:two-factor-login-setup")},
    )


@sensitive_post_parameters("code")
@login_required
@never_cache
def setup(request):
    """Set up (or replace) the authenticator app from the account page."""
    if not request.user.has_usable_password():
        return redirect("account")
    device = two_factor.unconfirmed_authenticator(
        request.user, request.session.get(SETUP_DEVICE_KEY)
    )
    if device is None or request.method == "GET" and "again" in request.GET:
        device = two_factor.new_authenticator(request.user)
        request.session[SETUP_DEVICE_KEY] = device.pk
    form, codes = _turn_on_with_posted_code(request, request.user, device)
    if codes is not None:
        request.session.pop(SETUP_DEVICE_KEY, None)
        two_factor.otp_login(request, device)
        return _show_codes(request, codes, reverse("account"))
    return _setup_page(
        request,
        device,
        form,
        {"required": False, "action": reverse("organizations:two-factor-setup")},
    )


@login_required
@never_cache
def recovery_codes(request):
    """The new recovery codes, shown once."""
    shown = request.session.pop(two_factor.NEW_CODES_KEY, None)
    if not isinstance(shown, dict):
        return redirect("account")
    return render(
        request,
        "registration/two_factor_recovery_codes.html",
        {"codes": shown["codes"], "next": shown.get("next") or reverse("account")},
    )


@login_required
@require_POST
def new_recovery_codes(request):
    if not two_factor.has_two_factor(request.user):
        return redirect("account")
    codes = actions.do_replace_recovery_codes(request=request, user=request.user)
    return _show_codes(request, codes, reverse("account"))
