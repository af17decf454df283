"""Workflows across organizations, accounts and the audit log."""

import datetime as dt
import logging
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from organizations import audit, invitations, two_factor
from organizations import microsoft_signin as signin
from organizations.mail import send_email
from organizations.models import AuditEvent, Membership, MicrosoftIdentity, Organization

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


def do_set_self_service_enabled(*, request, organization, enabled: bool):
    """The server administrator's switch: the organization's users may reach My backups."""
    if organization.self_service_enabled == enabled:
        return
    organization.self_service_enabled = enabled
    organization.save(update_fields=["self_service_enabled"])
    audit.record(
        "self_service_enabled" if enabled else "self_service_disabled",
        f"Self-service (My backups) {'enabled' if enabled else 'disabled'} for "
        f"{organization.name}.",
        request=request,
        organization=organization,
    )


USER_PERMISSIONS = {
    "users_may_browse": "browse",
    "users_may_download": "download",
    "users_may_restore": "restore to their own OneDrive",
}


def do_set_user_permissions(*, request, organization, **allowed: bool):
    """What the organization's users may do with their own backups (users_may_browse,
    users_may_download, users_may_restore); one audit entry naming what changed."""
    changed = [
        field
        for field in USER_PERMISSIONS
        if field in allowed and getattr(organization, field) != allowed[field]
    ]
    if not changed:
        return
    for field in changed:
        setattr(organization, field, allowed[field])
    organization.save(update_fields=changed)
    words = ", ".join(
        f"{'may' if allowed[field] else 'may not'} {USER_PERMISSIONS[field]}" for field in changed
    )
    audit.record(
        "self_service_permissions_changed",
        f"Users of {organization.name} now {words}.",
        request=request,
        organization=organization,
    )


def do_set_member_role(*, request, membership, role: str):
    """Make a user a restore operator or back (never an administrator's role: those are the
    server administrator's)."""
    allowed = {Membership.Role.USER, Membership.Role.OPERATOR}
    if membership.role not in allowed or role not in allowed:
        raise ValueError(f"Only users and restore operators change roles here, not {role}.")
    if membership.role == role:
        return
    membership.role = role
    membership.save(update_fields=["role"])
    audit.record(
        "role_changed",
        f"{membership.user.email} is now {Membership.Role(role).label.lower()} of "
        f"{membership.organization.name}.",
        request=request,
        organization=membership.organization,
    )


# ----- two-factor sign-in (the rules are in two_factor.py) ----------------------------------


def do_turn_on_two_factor(*, request, user, device, code: str) -> list[str] | None:
    """Confirm an authenticator app with a code it shows: it replaces any earlier app and comes
    with ten new recovery codes (returned, to be shown once). None when the code is wrong."""
    if not two_factor.code_confirms(device, code):
        return None
    with transaction.atomic():
        two_factor.TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = two_factor.new_recovery_codes(user)
        audit.record(
            "two_factor_enabled",
            "Turned on two-factor sign-in (authenticator app).",
            request=request,
            actor=user,
            organization=two_factor.home_organization(user),
        )
        two_factor.record_new_codes(request, user)
    return codes


@transaction.atomic
def do_replace_recovery_codes(*, request, user) -> list[str]:
    codes = two_factor.new_recovery_codes(user)
    two_factor.record_new_codes(request, user)
    return codes


@transaction.atomic
def do_turn_off_two_factor(*, request, user):
    two_factor.TOTPDevice.objects.filter(user=user).delete()
    two_factor.StaticDevice.objects.filter(user=user).delete()
    audit.record(
        "two_factor_disabled",
        "Turned off two-factor sign-in.",
        request=request,
        actor=user,
        organization=two_factor.home_organization(user),
    )


# ----- inviting users (the rules are in invitations.py) -------------------------------------


def do_invite_users(*, request, organization, memberships, method: str) -> int:
    """Email each user account an invitation (a link to set a password, or to use Sign in with
    Microsoft); returns how many emails were sent. Each one sent is in the audit log, and its
    time in the membership's `invited_at`."""
    login_url = settings.KODO_BASE_URL.rstrip("/") + reverse("login")
    sent = 0
    for membership in memberships:
        user = membership.user
        if membership.role != Membership.Role.USER or membership.organization_id != organization.pk:
            continue  # never an administrator's or an operator's account, nor another org's
        context = {"user": user, "organization": organization, "login_url": login_url}
        if method == invitations.MICROSOFT:
            template = "organizations/user_invitation_microsoft_email.txt"
        else:
            template = "organizations/user_invitation_email.txt"
            context["url"] = invitation_url(user)
            context["days"] = max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)
        body = render_to_string(template, context)
        if not send_email(f"Your Kodo account at {organization.name}", body, [user.email]):
            continue
        sent += 1
        membership.invited_at = timezone.now()
        membership.save(update_fields=["invited_at"])
        audit.record(
            "user_invited",
            invitations.message(user.email, method),
            request=request,
            organization=organization,
        )
    return sent


@transaction.atomic
def do_link_microsoft_identity(*, request, user, pending: dict) -> MicrosoftIdentity:
    """Sign in with Microsoft: save an administrator's confirmed link; raises SignInRefused
    when the identity is taken or its tenant is not one of the account's organizations'."""
    tenant_id, object_id = uuid.UUID(pending["tenant_id"]), uuid.UUID(pending["object_id"])
    organization = signin.tenant_allowed_for(user, tenant_id)
    if organization is None:
        raise signin.SignInRefused(
            "That Microsoft account's tenant is not in a configuration of your organization, "
            "so it cannot sign you in to Kodo. Sign in with an account of your organization's "
            "Microsoft 365."
        )
    taken = MicrosoftIdentity.objects.select_for_update().filter(
        tenant_id=tenant_id, object_id=object_id
    )
    if taken.exclude(user=user).exists():
        raise signin.SignInRefused(
            "That Microsoft account is already linked to another Kodo account."
        )
    identity, _ = MicrosoftIdentity.objects.update_or_create(
        tenant_id=tenant_id,
        object_id=object_id,
        defaults={"user": user, "username": pending["username"], "confirmed_at": timezone.now()},
    )
    audit.record(
        "microsoft_account_linked",
        f"Linked the Microsoft account {pending['username'] or object_id} "
        f"(tenant {tenant_id}) to sign in.",
        request=request,
        actor=user,
        organization=organization,
    )
    return identity


@transaction.atomic
def do_unlink_microsoft_identity(*, request, user, identity_id: int) -> bool:
    identity = MicrosoftIdentity.objects.filter(user=user, pk=identity_id).first()
    if identity is None:
        return False
    identity.delete()
    audit.record(
        "microsoft_account_unlinked",
        f"Unlinked the Microsoft account {identity.username or identity.object_id} "
        f"(tenant {identity.tenant_id}).",
        request=request,
        actor=user,
        organization=signin.organizations_of_tenant(identity.tenant_id)
        .filter(memberships__user=user)
        .first(),
    )
    return True
