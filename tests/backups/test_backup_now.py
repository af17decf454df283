from unittest import mock

from django.urls import reverse
from django.utils import timezone

from backups.models import BackupRun
from backups.tasks import fan_out_backups
from organizations.models import AuditEvent
from tests.factories import make_users


def test_backup_now_for_a_user_enqueues_and_audit_logs(
    admin_a_client, world, django_capture_on_commit_callbacks
):
    user = make_users(world.org_a, 1)[0]
    url = reverse(
        "backups:start-user-backup", args=[world.org_a.code, user.configuration.code, user.graph_id]
    )

    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_a_client.post(url)

    assert response.status_code == 302
    run = BackupRun.objects.get()
    assert (run.directory_user, run.status, run.trigger) == (user, "queued", "manual")
    assert len(callbacks) == 1
    event = AuditEvent.objects.get(action="backup_started")
    assert event.organization == world.org_a and user.email in event.message


def test_backup_now_twice_does_not_start_a_second_run(
    admin_a_client, world, django_capture_on_commit_callbacks
):
    user = make_users(world.org_a, 1)[0]
    url = reverse(
        "backups:start-user-backup", args=[world.org_a.code, user.configuration.code, user.graph_id]
    )
    with django_capture_on_commit_callbacks() as callbacks:
        admin_a_client.post(url)
        admin_a_client.post(url)
    assert BackupRun.objects.count() == 1 and len(callbacks) == 1


def test_backup_now_for_a_configuration_starts_one_run_per_user(
    admin_a_client, world, django_capture_on_commit_callbacks
):
    """The request only enqueues the fan-out; the fan-out task (run here) starts the runs
    (tests/backups/test_fan_out.py has the details)."""
    users = make_users(world.org_a, 3)
    users[2].onedrive = "no"
    users[2].onedrive_checked_at = timezone.now()  # found without one just now
    users[2].save()
    url = reverse(
        "backups:start-configuration-backup", args=[world.org_a.code, users[0].configuration.code]
    )

    with (
        mock.patch("backups.tasks.run_backup.delay"),
        mock.patch("backups.tasks.fan_out_backups.delay", lambda *args: fan_out_backups.run(*args)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = admin_a_client.post(url, follow=True)

    assert set(BackupRun.objects.values_list("directory_user", flat=True)) == {
        users[0].pk,
        users[1].pk,
    }
    assert "Backing up 2 users" in response.content.decode()
    assert AuditEvent.objects.filter(action="backup_started").count() == 1


def test_backup_now_needs_post(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    url = reverse(
        "backups:start-configuration-backup", args=[world.org_a.code, user.configuration.code]
    )
    assert admin_a_client.get(url).status_code == 405
    assert not BackupRun.objects.exists()
