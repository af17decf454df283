import datetime as dt

from django.core import mail
from django.utils import timezone

from backups.models import BackupRun
from organizations.models import AuditEvent
from schedules import actions
from schedules.actions import do_fire_schedule
from schedules.models import ScheduleFiring
from schedules.tasks import fire_schedule
from tests.factories import make_configuration, make_schedule, mirror


def test_a_firing_starts_one_run_per_user_on_commit(world, django_capture_on_commit_callbacks):
    configuration = make_configuration(world.org_a)
    users = mirror(configuration, 3)
    gone = mirror(configuration, 1, prefix="gone")[0]
    gone.__class__.objects.filter(pk=gone.pk).update(removed_at=timezone.now())
    schedule = make_schedule(world.org_a, configuration)
    with django_capture_on_commit_callbacks() as callbacks:
        fire_schedule(schedule.pk)
    runs = BackupRun.objects.all()
    assert {r.directory_user for r in runs} == set(users)
    assert {r.trigger for r in runs} == {"schedule"} and len(callbacks) == 3
    assert set(ScheduleFiring.objects.get().runs.all()) == set(runs)


def test_a_user_still_running_is_skipped_and_recorded_never_doubled(world):
    configuration = make_configuration(world.org_a)
    users = mirror(configuration, 2)
    schedule = make_schedule(world.org_a, configuration)
    do_fire_schedule(schedule)
    BackupRun.objects.filter(directory_user=users[0]).update(status="running")
    BackupRun.objects.filter(directory_user=users[1]).update(status="succeeded", active_user=None)
    second = do_fire_schedule(schedule)
    statuses = {r.directory_user_id: r.status for r in second.runs.all()}
    assert statuses == {users[0].pk: "skipped", users[1].pk: "queued"}
    assert (
        BackupRun.objects.filter(directory_user=users[0], status__in=["queued", "running"]).count()
        == 1
    )
    skipped = BackupRun.objects.get(status="skipped")
    assert "still running" in skipped.error


def test_a_disabled_or_deleted_schedule_does_nothing(world):
    configuration = make_configuration(world.org_a)
    mirror(configuration, 2)
    schedule = make_schedule(world.org_a, configuration, enabled=False)
    fire_schedule(schedule.pk)
    fire_schedule(999999)
    assert not BackupRun.objects.exists()


def test_run_now_from_the_list(admin_a_client, world, django_capture_on_commit_callbacks):
    configuration = make_configuration(world.org_a)
    mirror(configuration, 2)
    schedule = make_schedule(world.org_a, configuration)
    with django_capture_on_commit_callbacks() as callbacks:
        page = admin_a_client.post(
            f"/o/{world.org_a.code}/schedules/{schedule.code}/run/", follow=True
        ).content.decode()
    assert "2 user backups" in page and len(callbacks) == 2
    assert ScheduleFiring.objects.get().trigger == "run_now"
    assert AuditEvent.objects.filter(action="schedule_run_now").exists()
    assert "Running" in admin_a_client.get(f"/o/{world.org_a.code}/schedules/").content.decode()


def _finish(firing, status):
    BackupRun.objects.filter(firings=firing).update(
        status=status, active_user=None, finished_at=timezone.now()
    )


def test_admins_are_emailed_once_when_a_firing_fails(world):
    configuration = make_configuration(world.org_a)
    mirror(configuration, 2)
    schedule = make_schedule(world.org_a, configuration)  # notify on failure (the default)
    firing = do_fire_schedule(schedule)
    assert actions.do_notify_finished_firings() == 0  # still running
    _finish(firing, "failed")
    assert actions.do_notify_finished_firings() == 1
    [email] = mail.outbox
    assert email.to == ["admin@alpha.example"] and "failed" in email.subject
    assert "U 0" in email.body
    assert actions.do_notify_finished_firings() == 0  # once


def test_success_is_emailed_only_when_asked(world):
    configuration = make_configuration(world.org_a)
    mirror(configuration, 1)
    quiet = make_schedule(world.org_a, configuration)
    loud = make_schedule(world.org_a, configuration, name="Loud", notify="always")
    _finish(do_fire_schedule(quiet), "succeeded")
    BackupRun.objects.update(active_user=None)
    _finish(do_fire_schedule(loud), "succeeded")
    actions.do_notify_finished_firings()
    assert [m.subject for m in mail.outbox] == ["Kodo: backup schedule Loud succeeded"]


def test_the_summary_report(world):
    configuration = make_configuration(world.org_a)
    mirror(configuration, 2)
    schedule = make_schedule(world.org_a, configuration)
    firing = do_fire_schedule(schedule)
    _finish(firing, "failed")
    BackupRun.objects.filter(pk=firing.runs.first().pk).update(
        status="succeeded", bytes_stored=5 * 1024 * 1024
    )
    old = BackupRun.objects.create(
        organization=world.org_a,
        configuration=configuration,
        directory_user=firing.runs.first().directory_user,
        status="failed",
    )
    BackupRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    assert actions.do_send_summary_reports() == 1
    body = mail.outbox[0].body
    assert "Runs: 2" in body and "Failed: 1" in body and "5.0\xa0MB" in body
