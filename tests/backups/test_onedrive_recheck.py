"""A user imported without a OneDrive is not left out forever: once the last check is older than
KODO_ONEDRIVE_RECHECK_HOURS, the next configuration-wide or scheduled backup asks again, and
backs the user up if a OneDrive was provisioned meanwhile."""

import datetime as dt
from unittest import mock

import requests
from django.utils import timezone

from backups.actions import backup_candidates, do_fan_out_backups, do_run_inline
from backups.models import BackupRun, RunIssue
from o365.models import DirectoryUser
from tests.factories import make_schedule, make_users

FAST_CLIENT = {"backoff_base": 0.01, "max_backoff": 0.2}


def _provision_through_the_admin_api(running, user):
    response = requests.post(
        f"{running.info['admin_base']}/provision_drive",
        json={"user": user.user_principal_name},
        verify=running.info["ca_file"],
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]


def _checked_hours_ago(user, hours):
    DirectoryUser.objects.filter(pk=user.pk).update(
        onedrive_checked_at=timezone.now() - dt.timedelta(hours=hours)
    )


def test_a_onedrive_provisioned_later_is_backed_up_once_the_recheck_is_due(tenant, settings):
    settings.KODO_ONEDRIVE_RECHECK_HOURS = 24
    without = tenant.users[-1]

    skipped = tenant.backup(without)
    without.refresh_from_db()
    assert skipped.status == BackupRun.Status.SKIPPED
    assert RunIssue.objects.filter(run=skipped, reason=RunIssue.Reason.NO_ONEDRIVE).exists()
    assert without.onedrive == DirectoryUser.OneDrive.MISSING
    assert timezone.now() - without.onedrive_checked_at < dt.timedelta(minutes=5)
    assert without not in backup_candidates(tenant.configuration)

    drive = _provision_through_the_admin_api(tenant.running, without)
    tenant.sim.add_file(without.graph_id, "/Later/notes.txt", content=b"provisioned later")
    # Within the recheck period the answer stands: no run for that user yet.
    assert without not in backup_candidates(tenant.configuration)

    _checked_hours_ago(without, 25)  # the clock moves past the recheck
    with mock.patch("backups.tasks.run_backup.apply_async"):
        started, _ = do_fan_out_backups(tenant.configuration)
    assert started == len(tenant.users)
    run = BackupRun.objects.get(directory_user=without, status=BackupRun.Status.QUEUED)
    run = do_run_inline(run, client_options=FAST_CLIENT, threads=2)

    without.refresh_from_db()
    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    assert run.files_downloaded >= 1
    assert without.onedrive == DirectoryUser.OneDrive.PROVISIONED
    assert without.drive_id == drive["drive_id"]
    assert without in backup_candidates(tenant.configuration)


def test_a_user_still_without_a_onedrive_waits_again_after_the_recheck(tenant, settings):
    settings.KODO_ONEDRIVE_RECHECK_HOURS = 24
    without = tenant.users[-1]
    tenant.backup(without)
    _checked_hours_ago(without, 25)
    assert without in backup_candidates(tenant.configuration)

    again = tenant.backup(without)

    assert again.status == BackupRun.Status.SKIPPED
    assert without not in backup_candidates(tenant.configuration)


def test_the_candidates_follow_the_recheck_period(world, settings):
    settings.KODO_ONEDRIVE_RECHECK_HOURS = 24
    now = timezone.now()
    unknown, provisioned, recent, old, never_dated = make_users(world.org_a, 5)
    configuration = unknown.configuration
    DirectoryUser.objects.filter(pk=provisioned.pk).update(onedrive="yes")
    missing = DirectoryUser.OneDrive.MISSING
    DirectoryUser.objects.filter(pk=recent.pk).update(
        onedrive=missing, onedrive_checked_at=now - dt.timedelta(hours=23)
    )
    DirectoryUser.objects.filter(pk=old.pk).update(
        onedrive=missing, onedrive_checked_at=now - dt.timedelta(hours=24)
    )
    DirectoryUser.objects.filter(pk=never_dated.pk).update(onedrive=missing)

    assert set(backup_candidates(configuration, now=now)) == {
        unknown,
        provisioned,
        old,
        never_dated,
    }
    assert recent in backup_candidates(configuration, now=now + dt.timedelta(hours=1))
    settings.KODO_ONEDRIVE_RECHECK_HOURS = 0
    assert recent in backup_candidates(configuration, now=now)


def test_a_schedule_picks_the_user_up_again_after_the_recheck(world, settings):
    settings.KODO_ONEDRIVE_RECHECK_HOURS = 24
    now = timezone.now()
    user, other = make_users(world.org_a, 2)
    schedule = make_schedule(world.org_a, user.configuration)
    DirectoryUser.objects.filter(pk=user.pk).update(
        onedrive=DirectoryUser.OneDrive.MISSING, onedrive_checked_at=now
    )

    assert set(schedule.users_for_firing(now=now)) == {other}
    assert set(schedule.users_for_firing(now=now + dt.timedelta(hours=25))) == {user, other}
