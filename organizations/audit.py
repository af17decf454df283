"""The audit log: one function to write an entry, one to tell where a request came from, and
the words the log shows for each action (entries keep the code; people read the label)."""

import ipaddress
import logging

from django.conf import settings

from organizations.models import AuditEvent

log = logging.getLogger(__name__)

# Every action recorded anywhere (tests/organizations/test_words_audit_labels.py checks that each
# `record(...)` in the code has its label here). Past tense, as the log tells what happened.
ACTION_LABELS = {
    # accounts
    "login": "Logged in",
    "logout": "Logged out",
    "login_failed": "Login failed",
    "password_reset_requested": "Password reset requested",
    "invitation_sent": "Invitation sent",
    "microsoft_signin": "Signed in with Microsoft",
    "microsoft_signin_refused": "Sign in with Microsoft refused",
    "microsoft_account_linked": "Microsoft account linked",
    "microsoft_account_unlinked": "Microsoft account unlinked",
    "two_factor_enabled": "Two-factor sign-in turned on",
    "two_factor_disabled": "Two-factor sign-in turned off",
    "recovery_codes_created": "Recovery codes made",
    "recovery_code_used": "Recovery code used",
    "two_factor_code_refused": "Two-factor code refused",
    "two_factor_locked_out": "Locked out (two-factor)",
    "user_invited": "User invited",
    # organizations
    "organization_created": "Organization created",
    "services_enabled": "Services enabled",
    "services_disabled": "Services disabled",
    "download_policy_changed": "Download permission changed",
    "self_service_enabled": "Self-service enabled",
    "self_service_disabled": "Self-service disabled",
    "self_service_permissions_changed": "Self-service permissions changed",
    "role_changed": "Role changed",
    # Office 365 configurations and users
    "cloud_created": "Cloud added",
    "cloud_updated": "Cloud changed",
    "cloud_deleted": "Cloud deleted",
    "configuration_created": "Configuration added",
    "configuration_updated": "Configuration changed",
    "configuration_deleted": "Configuration deleted",
    "configuration_tested": "Connection tested",
    "users_import": "Import of users started",
    "users_sync": "Synchronization of users started",
    "auto_sync_changed": "Automatic synchronization changed",
    # schedules
    "schedule_created": "Schedule created",
    "schedule_updated": "Schedule changed",
    "schedule_enabled": "Schedule enabled",
    "schedule_disabled": "Schedule disabled",
    "schedule_deleted": "Schedule deleted",
    "schedule_run_now": "Schedule run now",
    # backups, downloads and restores
    "backup_started": "Backup started",
    "backup_canceled": "Backup canceled",
    "download_file": "File downloaded",
    "download_zip": "Files downloaded as a zip",
    "export": "Files exported (manage.py export)",
    "restore_started": "Restore started",
    "restore_canceled": "Restore canceled",
    "restore_finished": "Restore finished",
}


def action_label(action: str) -> str:
    """The words the audit log shows for `action`; an action without a label (an entry older
    than this table, or one recorded by a newer version) still reads as words."""
    return ACTION_LABELS.get(action) or action.replace("_", " ").capitalize()


def client_ip(request) -> str | None:
    """The client's address; behind KODO_PROXY_COUNT trusted proxies, taken from X-Forwarded-For."""
    if request is None:
        return None
    candidate = request.META.get("REMOTE_ADDR", "")
    proxies = settings.KODO_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def record(
    action: str, message: str, *, request=None, actor=None, organization=None, actor_email: str = ""
):
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    event = AuditEvent.objects.create(
        action=action,
        message=message[:500],
        actor=actor,
        actor_email=(getattr(actor, "email", "") or actor_email)[:254],
        organization=organization,
        ip_address=client_ip(request),
    )
    log.info(
        "audit %s org=%s actor=%s", action, organization and organization.code, event.actor_email
    )
    return event


def actions_labelled(words: str) -> list[str]:
    """The actions whose label contains `words` (any case): searching the log for "backup
    started" finds the entries people read as such."""
    words = words.strip().lower()
    return [action for action, label in ACTION_LABELS.items() if words and words in label.lower()]
