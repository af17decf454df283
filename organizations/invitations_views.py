"""INVITE and INVITE ALL on the organization's Users page (rules in invitations.py)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from organizations import actions, invitations
from organizations.access import org_admin_required


def _users_page(org):
    return redirect("o365:organization-users", org_code=org.code)


@org_admin_required
@require_POST
def invite_user(request, org, user_id):
    membership = get_object_or_404(invitations.invitable(org), user_id=user_id)
    form = invitations.InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how to invite: that way is not available.")
        return _users_page(org)
    if actions.do_invite_users(
        request=request,
        organization=org,
        memberships=[membership],
        method=form.cleaned_data["method"],
    ):
        messages.success(request, f"Invitation emailed to {membership.user.email}.")
    else:
        messages.error(
            request,
            f"The invitation to {membership.user.email} could not be emailed. Check the "
            "server's mail settings (EMAIL_URL) and the worker's log, then try again.",
        )
    return _users_page(org)


@org_admin_required
@require_POST
def invite_users(request, org):
    form = invitations.InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how to invite: that way is not available.")
        return _users_page(org)
    waiting = invitations.not_yet_invited(org)
    if not waiting:
        messages.info(request, "Every user imported from Microsoft 365 has been invited already.")
        return _users_page(org)
    batch = waiting[: invitations.BATCH]
    sent = actions.do_invite_users(
        request=request, organization=org, memberships=batch, method=form.cleaned_data["method"]
    )
    left = len(waiting) - sent
    text = f"Invitations emailed to {sent} user{'s' if sent != 1 else ''}."
    if left:
        text += f" {left} not invited yet: click INVITE ALL again."
    (messages.success if sent else messages.error)(request, text)
    return _users_page(org)
