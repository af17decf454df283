"""Sign in with Microsoft's pages: start, Microsoft's return (the reply URL), and linking an
administrator's Microsoft account from the account page. The rules are in microsoft_signin.py."""

import logging
import time

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from organizations import microsoft_signin as signin
from organizations.actions import do_link_microsoft_identity, do_unlink_microsoft_identity

log = logging.getLogger(__name__)
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _safe_next(request, next_url):
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return ""


def _refused(request, message, status):
    return render(
        request, "registration/microsoft_refused.html", {"message": message}, status=status
    )


@never_cache
@require_GET
def microsoft_signin(request):
    """The login page's Sign in with Microsoft: off the server sends 404."""
    if not signin.is_enabled():
        raise Http404
    if request.user.is_authenticated:
        return redirect("kodo:home")
    try:
        url = signin.start(request, "signin", _safe_next(request, request.GET.get("next", "")))
    except signin.SignInRefused as refused:
        log.warning("Sign in with Microsoft could not start: %s", refused.detail)
        return _refused(request, refused.message, refused.status)
    return redirect(url)


@never_cache
@login_required
@require_POST
def microsoft_link(request):
    """The account page's LINK MICROSOFT ACCOUNT: the same sign-in, to confirm afterwards."""
    if not signin.may_link(request.user):
        raise Http404
    try:
        url = signin.start(request, "link")
    except signin.SignInRefused as refused:
        messages.error(request, refused.message)
        return redirect("account")
    return redirect(url)


@never_cache
@require_GET
def microsoft_callback(request):
    """Microsoft sends the browser back here (the reply URL registered on the app)."""
    if not signin.is_enabled():
        raise Http404
    who = None
    # A return without a sign-in this browser started is anyone's GET: logged, never an audit
    # entry (the audit log would otherwise fill at an anonymous visitor's pace).
    started = signin.FLOW_KEY in request.session
    try:
        saved, who = signin.finish(request)
    except signin.SignInRefused as refused:
        log.info("Sign in with Microsoft refused: %s", refused.detail)
        if started:
            signin.record_refusal(request, None, refused.detail or refused.message)
        return _refused(request, refused.message, refused.status)
    if saved["mode"] == "link":
        if not request.user.is_authenticated or request.user.pk != saved["user"]:
            signin.record_refusal(request, who, "link started by another account")
            return _refused(
                request,
                "This Microsoft account link was started by another Kodo account. Log in and "
                "start again from your account page.",
                403,
            )
        request.session[signin.PENDING_LINK_KEY] = {
            "tenant_id": str(who.tenant_id),
            "object_id": str(who.object_id),
            "username": who.username,
            "name": who.name,
            "at": time.time(),
        }
        return redirect("organizations:microsoft-link-confirm")
    user, organization_or_reason = signin.find_account(who)
    if user is None:
        signin.record_refusal(request, who, organization_or_reason)
        return render(
            request,
            "registration/microsoft_no_access.html",
            {"who": who},
            status=403,
        )
    if request.user.is_authenticated and request.user != user:
        # Another person's session in this browser: theirs ends, this one begins.
        request.session.flush()
    request._kodo_two_factor_checked = True  # Entra did the second factor
    login(request, user, backend=MODEL_BACKEND)
    request.session[signin.SIGNED_IN_WITH_KEY] = "microsoft"
    signin.record_sign_in(request, user, organization_or_reason, who)
    return redirect(_safe_next(request, saved.get("next", "")) or "kodo:home")


@never_cache
@login_required
def microsoft_link_confirm(request):
    """Shows the Microsoft account just signed in with; CONFIRM (POST) links it."""
    pending = request.session.get(signin.PENDING_LINK_KEY)
    if not pending or time.time() - pending.get("at", 0) > signin.PENDING_LINK_SECONDS:
        request.session.pop(signin.PENDING_LINK_KEY, None)
        messages.error(request, "Nothing to confirm: start again with LINK MICROSOFT ACCOUNT.")
        return redirect("account")
    if not signin.may_link(request.user):
        raise Http404
    if request.method == "POST":
        request.session.pop(signin.PENDING_LINK_KEY, None)
        if request.POST.get("confirm") != "1":
            messages.info(request, "The Microsoft account was not linked.")
            return redirect("account")
        try:
            do_link_microsoft_identity(request=request, user=request.user, pending=pending)
        except signin.SignInRefused as refused:
            messages.error(request, refused.message)
            return redirect("account")
        messages.success(
            request,
            f"Linked: you can now sign in with Microsoft as {pending['username']}.",
        )
        return redirect("account")
    allowed = signin.tenant_allowed_for(request.user, pending["tenant_id"])
    return render(
        request,
        "registration/microsoft_link_confirm.html",
        {"pending": pending, "organization": allowed},
    )


@never_cache
@login_required
@require_POST
def microsoft_unlink(request):
    try:
        identity_id = int(request.POST.get("identity", ""))
    except ValueError:
        return redirect("account")
    if do_unlink_microsoft_identity(request=request, user=request.user, identity_id=identity_id):
        messages.success(request, "Unlinked: that Microsoft account no longer signs you in.")
    return redirect("account")
