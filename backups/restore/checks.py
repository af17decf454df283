"""What must hold before a restore starts (do_start_restore), checked with Microsoft in the web
request, within KODO_TEST_CONNECTION_SECONDS: the target configuration's app may write files,
and the target user has a OneDrive. Each refusal names what is missing."""

import time

from django.conf import settings

from backups.restore import RestoreRefused
from o365.graph import AuthenticationFailed, GraphError
from o365.onedrive import NoOneDrive, user_drive_id
from o365.permissions import RESTORE_PERMISSIONS, missing_permissions

CONSENT_STEPS = (
    "grant it in Microsoft Entra ID (App registrations → the Kodo app → API permissions → "
    '"Grant admin consent"), then check with TEST CONNECTION'
)


def check_target(target_user, *, client=None) -> str:
    """The target user's OneDrive id, or RestoreRefused saying what is missing."""
    configuration = target_user.configuration
    own_client = client is None
    if client is None:
        client = configuration.graph_client(
            max_retries=2,
            deadline=time.monotonic() + settings.KODO_TEST_CONNECTION_SECONDS,
        )
    try:
        try:
            roles = client.roles()
        except AuthenticationFailed as error:
            raise RestoreRefused(
                f"Kodo could not sign in to the tenant of {configuration.name}: {error}"
            ) from None
        except GraphError as error:
            raise RestoreRefused(_unreachable(configuration, error)) from None
        writes = {name for name, _ in RESTORE_PERMISSIONS}
        missing = [name for name in missing_permissions(roles, restore=True) if name in writes]
        if missing:
            raise RestoreRefused(
                f"The app registration of {configuration.name} lacks {', '.join(missing)}: "
                f"{CONSENT_STEPS}."
            )
        try:
            return user_drive_id(client, target_user.graph_id)
        except NoOneDrive:
            raise RestoreRefused(
                f"{target_user} ({target_user.email}) has no OneDrive: Microsoft 365 creates it "
                "when the user first opens OneDrive (an administrator can also pre-provision "
                "it); restore to another user's OneDrive meanwhile."
            ) from None
        except GraphError as error:
            raise RestoreRefused(_unreachable(configuration, error)) from None
    finally:
        if own_client:
            client.close()


def _unreachable(configuration, error) -> str:
    if getattr(error, "code", None) == "deadlineExceeded":
        return (
            f"Kodo could not reach Microsoft 365 for {configuration.name}: no answer within "
            f"{settings.KODO_TEST_CONNECTION_SECONDS:g} seconds. Try again later."
        )
    return f"Kodo could not check the target OneDrive with Microsoft 365: {error}"
