"""The account page: who you are, your password, two-factor sign-in and your Microsoft account."""

from axes.handlers.proxy import AxesProxyHandler
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from organizations import actions, microsoft_signin, two_factor
from organizations.two_factor_forms import TurnOffForm


def _roles(user):
    roles = ["Server administrator"] if user.is_superuser else []
    for membership in user.memberships.select_related("organization").order_by(
        "organization__name"
    ):
        roles.append(f"{membership.get_role_display()} of {membership.organization.name}")
    return roles


def _account_page(request, turn_off_form=None, status=200):
    user = request.user
    return render(
        request,
        "organizations/account.html",
        {
            "roles": _roles(user),
            "password_account": user.has_usable_password(),
            "signed_in_with_microsoft": microsoft_signin.signed_in_with_microsoft(request),
            "authenticator": two_factor.authenticator(user),
            "recovery_codes_left": two_factor.recovery_codes_left(user),
            "two_factor_required": two_factor.is_required(user),
            "turn_off_form": turn_off_form or TurnOffForm(),
        },
        status=status,
    )


@login_required
def account(request):
    return _account_page(request)


@sensitive_post_parameters("code", "password")
@login_required
@require_POST
def turn_off_two_factor(request):
    user = request.user
    if two_factor.is_required(user):
        messages.error(
            request,
            "Two-factor sign-in is required for administrators on this server: it cannot be "
            "turned off. You can set up a new authenticator app instead.",
        )
        return redirect("account")
    if not two_factor.has_two_factor(user):
        return redirect("account")
    form = TurnOffForm(request.POST)
    if form.is_valid() and two_factor.is_locked_out(request, user):
        form.add_error(None, "Too many wrong codes or passwords: wait a while, then try again.")
        return _account_page(request, turn_off_form=form, status=429)
    if form.is_valid():
        proven = False
        if form.cleaned_data["code"]:
            try:
                proven = two_factor.verify_code(user, form.cleaned_data["code"]) is not None
            except two_factor.Throttled:
                proven = False
        elif user.check_password(form.cleaned_data["password"]):
            proven = True
        if proven:
            actions.do_turn_off_two_factor(request=request, user=user)
            messages.success(request, "Two-factor sign-in is off.")
            return redirect("account")
        # A wrong password or code counts as a failed log in (django-axes), as at the code step.
        AxesProxyHandler.user_login_failed(
            sender=__name__, credentials={"username": user.get_username()}, request=request
        )
        form.add_error(None, "That code or password is not right: two-factor sign-in stays on.")
    return _account_page(request, turn_off_form=form, status=400)
