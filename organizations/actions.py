"""Workflows across organizations, accounts and the audit log."""

import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from organizations import audit
from organizations.mail import send_email
from organizations.models import AuditEvent, Membership, Organization

log = logging.getLogger(__name__)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def invitation_url(user) -> str:
    """A one-time link to set a password (Django's password-reset token: valid until used)."""
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return settings.KODO_BASE_URL.rstrip("/") + path


def do_send_invitation(user, organization, url: str) -> bool:
    """Email the invitation; False (logged) when it could not be sent: the server admin still
    sees the link on the organization's page."""
    body = render_to_string(
        "organizations/invitation_email.txt",
        {"user": user, "organization": organization, "url": url},
    )
    return send_email(f"Your Kodo account for {organization.name}", body, [user.email])


@transaction.atomic
def do_create_organization(*, request, name, time_zone, admin_name, admin_email):
    """Create an organization with its first admin; returns (organization, invitation URL)."""
    organization = Organization.objects.create(name=name, time_zone=time_zone)
    email = normalize_email(admin_email)
    first, _, last = admin_name.strip().partition(" ")
    admin = get_user_model().objects.create_user(
        username=email, email=email, first_name=first[:150], last_name=last[:150]
    )  # no usable password until the invitation is used
    Membership.objects.create(user=admin, organization=organization, role=Membership.Role.ADMIN)
    url = invitation_url(admin)
    transaction.on_commit(lambda: do_send_invitation(admin, organization, url))
    audit.record(
        "organization_created",
        f"Created organization {organization.name} with admin {email}.",
        request=request,
        organization=organization,
    )
    return organization, url


def do_set_services_enabled(*, request, organization, enabled: bool):
    if organization.services_enabled == enabled:
        return
    organization.services_enabled = enabled
    organization.save(update_fields=["services_enabled"])
    state = "enabled" if enabled else "disabled"
    audit.record(
        f"services_{state}",
        f"Services {state} for {organization.name}.",
        request=request,
        organization=organization,
    )


def do_set_admins_may_download(*, request, organization, allowed: bool):
    """The policy "Administrators may download users' data" of one organization (when off,
    its admins can only restore to Microsoft 365)."""
    if organization.admins_may_download == allowed:
        return
    organization.admins_may_download = allowed
    organization.save(update_fields=["admins_may_download"])
    audit.record(
        "download_policy_changed",
        f"Administrators of {organization.name} "
        f"{'may' if allowed else 'may no longer'} download users' data.",
        request=request,
        organization=organization,
    )


def do_reinvite_admin(*, request, organization, membership):
    url = invitation_url(membership.user)
    do_send_invitation(membership.user, organization, url)
    audit.record(
        "invitation_sent",
        f"Sent a new invitation to {membership.user.email}.",
        request=request,
        organization=organization,
    )
    return url


def do_record_password_reset_request(*, request, email: str) -> bool:
    """Record a request for a password-reset link; False when the link must not be sent because
    this address or this account asked too often in the last hour. The visitor sees the same page
    either way, so nobody learns which emails have an account."""
    address = audit.client_ip(request)
    recent = AuditEvent.objects.filter(
        action="password_reset_requested", created_at__gte=timezone.now() - dt.timedelta(hours=1)
    )
    if (
        recent.filter(ip_address=address).count() >= settings.KODO_RESET_EMAILS_PER_ADDRESS
        or recent.filter(actor_email=email).count() >= settings.KODO_RESET_EMAILS_PER_ACCOUNT
    ):
        log.warning(
            "Password reset for %s from %s refused: too many in the last hour.", email, address
        )
        return False
    audit.record(
        "password_reset_requested",
        f"Asked for a password-reset link for {email}.",
        request=request,
        actor_email=email,
        organization=Organization.objects.filter(memberships__user__username=email).first(),
    )
    return True
