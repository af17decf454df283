"""Inviting an organization's users (Kodo accounts an import linked to Microsoft 365) to Kodo:
by an email with a link to set a password, or by an email telling them to use Sign in with
Microsoft. Never an administrator's or an operator's account: those are the server
administrator's invitations (organizations/views.py).

When each person was last invited is kept in `Membership.invited_at` (each email sent is also
in the audit log, a `user_invited` entry naming the address).
"""

from django import forms
from django.conf import settings

from organizations.models import Membership

PASSWORD, MICROSOFT = "password", "microsoft"
# "INVITE ALL" sends at most this many emails per click (each is a request to the mail server,
# made while the admin waits); the page says how many are left.
BATCH = 100


def microsoft_sign_in_enabled() -> bool:
    return bool(getattr(settings, "KODO_MICROSOFT_SIGNIN_CLIENT_ID", ""))


def methods() -> list[tuple[str, str]]:
    choices = [(PASSWORD, "Email a link to set a password")]
    if microsoft_sign_in_enabled():
        choices.append((MICROSOFT, "Email them to use Sign in with Microsoft"))
    return choices


def invitable(organization):
    """The organization's user accounts an import linked to its Microsoft 365 directory."""
    return (
        Membership.objects.filter(
            organization=organization,
            role=Membership.Role.USER,
            user__is_active=True,
            user__directory_users__configuration__organization=organization,
            user__directory_users__removed_at__isnull=True,
        )
        .select_related("user")
        .distinct()
        .order_by("user__username")
    )


def message(email: str, method: str) -> str:
    how = "to sign in with Microsoft" if method == MICROSOFT else "to set a password"
    return f"Invited {email} {how}."


def not_yet_invited(organization):
    """The invitable memberships whose account no invitation was sent to (and that never
    signed in)."""
    return list(
        invitable(organization).filter(user__last_login__isnull=True, invited_at__isnull=True)
    )


class InviteForm(forms.Form):
    method = forms.ChoiceField(label="How", choices=methods, initial=PASSWORD)
