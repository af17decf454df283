"""Backup now for a whole configuration: the request records itself and enqueues one fan-out
task; the task starts one run per user, in batches, and sends one task per run."""

from unittest import mock

from django.urls import reverse

from backups.actions import do_fan_out_backups, start_run
from backups.models import BackupRun
from backups.tasks import fan_out_backups
from organizations.models import AuditEvent
from tests.factories import make_users


def _url(org, configuration):
    return reverse("backups:start-configuration-backup", args=[org.code, configuration.code])


def test_the_request_creates_no_run_and_enqueues_one_fan_out(
    admin_a_client, world, django_capture_on_commit_callbacks
):
    users = make_users(world.org_a, 5)
    configuration = users[0].configuration

    with (
        mock.patch("backups.tasks.fan_out_backups.delay") as delay,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = admin_a_client.post(_url(world.org_a, configuration), follow=True)

    assert response.status_code == 200
    assert not BackupRun.objects.exists()
    assert len(callbacks) == 1
    delay.assert_called_once_with(configuration.pk, world.org_a.pk, "manual")
    html = response.content.decode()
    assert "Backing up 5 users of" in html and "being queued" in html
    event = AuditEvent.objects.get(action="backup_started")
    assert event.organization == world.org_a and "5 users" in event.message


def test_nothing_is_enqueued_when_the_configuration_has_no_users(
    admin_a_client, world, django_capture_on_commit_callbacks
):
    configuration = make_users(world.org_a, 1)[0].configuration
    configuration.directory_users.all().delete()

    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_a_client.post(_url(world.org_a, configuration), follow=True)

    assert not callbacks and "has no users to back up" in response.content.decode()


def test_users_already_running_are_reported_and_not_doubled(
    admin_a_client, world, django_capture_on_commit_callbacks
):
    users = make_users(world.org_a, 4)
    busy, _ = start_run(users[1], enqueue=False)

    with (
        mock.patch("backups.tasks.run_backup.apply_async") as run_delay,
        mock.patch("backups.tasks.fan_out_backups.delay", lambda *args: fan_out_backups.run(*args)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = admin_a_client.post(_url(world.org_a, users[0].configuration), follow=True)

    assert "Backing up 3 users" in response.content.decode()
    assert "1 already running" in response.content.decode()
    assert BackupRun.objects.count() == 4
    assert BackupRun.objects.filter(directory_user=users[1]).get() == busy
    sent = {call.args[0][0] for call in run_delay.call_args_list}
    assert sent == set(BackupRun.objects.exclude(pk=busy.pk).values_list("pk", flat=True))


def test_the_fan_out_works_in_batches_and_sends_each_run_when_its_batch_commits(
    world, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    users = make_users(world.org_a, 7)
    configuration = users[0].configuration

    with mock.patch("backups.tasks.run_backup.apply_async") as run_delay:
        with (
            django_capture_on_commit_callbacks(execute=True) as callbacks,
            django_assert_max_num_queries(30),
        ):
            started, active = do_fan_out_backups(configuration, batch=3)

    assert (started, active) == (7, 0)
    assert len(callbacks) == 3  # one per batch of 3, 3 and 1 users
    assert run_delay.call_count == 7
    runs = BackupRun.objects.all()
    assert {r.directory_user_id for r in runs} == {u.pk for u in users}
    assert all(r.status == "queued" and r.trigger == "manual" for r in runs)
    assert {call.args[0] for call in run_delay.call_args_list} == {
        (r.pk, world.org_a.pk) for r in runs
    }
    assert all(r.sent_at for r in runs)  # the outbox knows they were handed to the broker


def test_a_second_delivery_of_the_fan_out_starts_nothing_new(
    world, django_capture_on_commit_callbacks
):
    users = make_users(world.org_a, 3)
    with (
        mock.patch("backups.tasks.run_backup.apply_async") as run_delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert fan_out_backups.run(users[0].configuration.pk, world.org_a.pk) == (
            "3 started, 0 already active"
        )
        assert fan_out_backups.run(users[0].configuration.pk, world.org_a.pk) == (
            "0 started, 3 already active"
        )
    assert BackupRun.objects.count() == 3 and run_delay.call_count == 3


def test_a_run_started_meanwhile_is_kept(world, django_capture_on_commit_callbacks):
    """A user's run started between the fan-out's look at active runs and its insert (Backup
    now for that user, a schedule): the batch falls back to one by one."""
    users = make_users(world.org_a, 3)
    real_filter = BackupRun.objects.filter
    raced = []

    def filter_then_race(*args, **kwargs):
        result = real_filter(*args, **kwargs)
        if "active_user__in" in kwargs and not raced:
            list(result)
            raced.append(start_run(users[2], enqueue=False)[0])
        return result

    with (
        mock.patch("backups.tasks.run_backup.apply_async"),
        mock.patch.object(BackupRun.objects, "filter", side_effect=filter_then_race),
        django_capture_on_commit_callbacks(execute=True),
    ):
        started, active = do_fan_out_backups(users[0].configuration)

    assert (started, active) == (2, 1)
    assert BackupRun.objects.count() == 3
    assert BackupRun.objects.get(directory_user=users[2]) == raced[0]


def test_a_fan_out_for_another_organization_does_nothing(world):
    configuration = make_users(world.org_a, 2)[0].configuration
    with mock.patch("backups.tasks.run_backup.apply_async") as run_delay:
        assert fan_out_backups.run(configuration.pk, world.org_b.pk) == "missing"
    assert not BackupRun.objects.exists() and not run_delay.called


def test_active_runs_have_a_cancel_button(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    run, _ = start_run(user, enqueue=False)
    cancel = reverse("backups:backup-run-cancel", args=[world.org_a.code, run.code])

    pages = [
        reverse("backups:backups", args=[world.org_a.code]),
        reverse("backups:backup-run", args=[world.org_a.code, run.code]),
        reverse(
            "backups:backup-user-history",
            args=[world.org_a.code, user.configuration.code, user.graph_id],
        ),
    ]
    for page in pages:
        assert cancel in admin_a_client.get(page).content.decode(), page

    response = admin_a_client.post(cancel, {"next": pages[2]})
    assert response.status_code == 302 and response.url == pages[2]
    run.refresh_from_db()
    assert run.status == BackupRun.Status.CANCELED
    for page in pages:
        assert cancel not in admin_a_client.get(page).content.decode(), page
