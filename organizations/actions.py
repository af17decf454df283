"""Workflows across organizations, accounts and the audit log."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from organizations import audit
from organizations.models import Membership, Organization


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


def do_send_invitation(user, organization, url: str):
    body = render_to_string(
        "organizations/invitation_email.txt",
        {"user": user, "organization": organization, "url": url},
    )
    send_mail(f"Your Kodo account for {organization.name}", body, None, [user.email])


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
    audit.record("organization_created",
                 f"Created organization {organization.name} with admin {email}.",
                 request=request, organization=organization)
    return organization, url


def do_set_services_enabled(*, request, organization, enabled: bool):
    if organization.services_enabled == enabled:
        return
    organization.services_enabled = enabled
    organization.save(update_fields=["services_enabled"])
    state = "enabled" if enabled else "disabled"
    audit.record(f"services_{state}", f"Services {state} for {organization.name}.",
                 request=request, organization=organization)


def do_reinvite_admin(*, request, organization, membership):
    url = invitation_url(membership.user)
    do_send_invitation(membership.user, organization, url)
    audit.record("invitation_sent", f"Sent a new invitation to {membership.user.email}.",
                 request=request, organization=organization)
    return url
