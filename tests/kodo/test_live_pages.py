"""Live parts of pages (kodo/live.py): each page that shows a job's state polls its own URL while
something shown is active; htmx's poll (HX-Request) gets only the live fragment, 200 while
active, 286 once nothing is (htmx swaps it in and stops), and job messages leave with it."""

from unittest import mock

import pytest
from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone

from backups.models import BackupRun, RestoreJob
from kodo.live import POLL_DONE, live_render
from o365.models import DirectoryJob
from schedules.models import ScheduleFiring
from tests.factories import make_configuration, make_finished_run, make_schedule, make_users

POLL = {"HX-Request": "true"}
CLEAR_JOB_MESSAGES = '<div id="job-messages" hx-swap-oob="true"></div>'


def _poll_attributes(url):
    return f'hx-get="{url}" hx-trigger="every 2s"'


# ----- the helper ---------------------------------------------------------------------------


TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {
            "loaders": [
                (
                    "django.template.loaders.locmem.Loader",
                    {
                        "page.html": "<html>{{ live_active }}</html>",
                        "fragment.html": "<p>{{ x }}</p>",
                    },
                )
            ]
        },
    }
]


@override_settings(TEMPLATES=TEMPLATES)
@pytest.mark.parametrize("active", [True, False])
def test_a_page_request_gets_the_whole_page_and_whether_to_poll(active):
    request = RequestFactory().get("/somewhere/")
    response = live_render(request, "page.html", "fragment.html", {"x": 1}, active=active)
    assert response.status_code == 200 and response.content == f"<html>{active}</html>".encode()
    assert response["Vary"] == "HX-Request"


@override_settings(TEMPLATES=TEMPLATES)
def test_a_poll_gets_the_fragment_200_while_active_and_286_with_job_messages_cleared():
    request = RequestFactory().get("/somewhere/", headers=POLL)
    running = live_render(request, "page.html", "fragment.html", {"x": 1}, active=True)
    done = live_render(request, "page.html", "fragment.html", {"x": 2}, active=False)
    assert (running.status_code, running.content) == (200, b"<p>1</p>")
    assert POLL_DONE == 286 and done.status_code == 286
    assert done.content == f"<p>2</p>{CLEAR_JOB_MESSAGES}".encode()
    assert done["Vary"] == running["Vary"] == "HX-Request"


# ----- every live page: polls while active, fragment, 286 when done, outsider 404 -----------


def _active_run(user, **fields):
    fields.setdefault("status", BackupRun.Status.RUNNING)
    return BackupRun.objects.create(
        organization=user.configuration.organization,
        configuration=user.configuration,
        directory_user=user,
        active_user=user,
        **fields,
    )


def _finish(job):
    ended = {"status": "succeeded"}
    if isinstance(job, BackupRun):
        ended["active_user"] = None  # as finish() leaves it: the user may be backed up again
    type(job).objects.filter(pk=job.pk).update(**ended)


def _backups_page(world):
    user = make_users(world.org_a, 1)[0]
    return reverse("backups:backups", args=[world.org_a.code]), _active_run(user)


def _run_page(world):
    run = _active_run(make_users(world.org_a, 1)[0])
    return reverse("backups:backup-run", args=[world.org_a.code, run.code]), run


def _user_history(world):
    user = make_users(world.org_a, 1)[0]
    url = reverse(
        "backups:backup-user-history",
        args=[world.org_a.code, user.configuration.code, user.graph_id],
    )
    return url, _active_run(user)


def _tasks(world):
    return reverse("backups:tasks", args=[world.org_a.code]), _active_run(
        make_users(world.org_a, 1)[0]
    )


def _dashboard(world):
    return reverse("backups:dashboard", args=[world.org_a.code]), _active_run(
        make_users(world.org_a, 1)[0]
    )


def _users_tab(world):
    configuration = make_configuration(world.org_a)
    job = DirectoryJob.objects.create(configuration=configuration, kind="import", status="running")
    url = f"{reverse('o365:configuration-users', args=[world.org_a.code])}?configuration="
    return url + str(configuration.code), job


def _directory_job(world):
    configuration = make_configuration(world.org_a)
    job = DirectoryJob.objects.create(configuration=configuration, kind="sync", status="queued")
    url = reverse("o365:directory-job", args=[world.org_a.code, configuration.code, job.code])
    return url, job


def _schedules(world):
    schedule = make_schedule(world.org_a)
    user = make_users(world.org_a, 1, configuration=schedule.configuration)[0]
    run = _active_run(user, status=BackupRun.Status.QUEUED)
    ScheduleFiring.objects.create(schedule=schedule, trigger="run_now").runs.add(run)
    return reverse("schedules:schedules", args=[world.org_a.code]), run


LIVE_PAGES = [
    _backups_page,
    _run_page,
    _user_history,
    _tasks,
    _dashboard,
    _users_tab,
    _directory_job,
    _schedules,
]


@pytest.mark.parametrize("make", LIVE_PAGES, ids=lambda make: make.__name__.strip("_"))
def test_the_page_polls_while_its_job_runs_and_stops_when_it_ends(admin_a_client, world, make):
    url, job = make(world)

    page = admin_a_client.get(url)
    assert page.status_code == 200 and "<html" in page.content.decode()
    assert _poll_attributes(url) in page.content.decode()
    running = admin_a_client.get(url, headers=POLL)
    assert running.status_code == 200 and "<html" not in running.content.decode()
    assert CLEAR_JOB_MESSAGES not in running.content.decode()

    _finish(job)
    done = admin_a_client.get(url, headers=POLL)
    assert done.status_code == 286 and "<html" not in done.content.decode()
    assert "Succeeded" in done.content.decode() or "No tasks are running" in done.content.decode()
    assert "hx-get" not in admin_a_client.get(url).content.decode()  # a reload does not poll


@pytest.mark.parametrize("make", LIVE_PAGES, ids=lambda make: make.__name__.strip("_"))
def test_an_outsiders_poll_gets_404(admin_b_client, world, make):
    url, _ = make(world)
    assert admin_b_client.get(url, headers=POLL).status_code == 404


# ----- what each page updates ---------------------------------------------------------------


def test_the_backups_poll_updates_the_users_table_and_the_recent_runs(admin_a_client, world):
    users = make_users(world.org_a, 2)
    make_finished_run(users[1])
    run = _active_run(users[0], status=BackupRun.Status.QUEUED)
    url = reverse("backups:backups", args=[world.org_a.code])

    queued = admin_a_client.get(url, headers=POLL).content.decode()
    assert queued.count(">Queued</span>") == 2  # the user's last backup, and the recent run
    assert "<h2>Users</h2>" in queued and "<h2>Recent runs</h2>" in queued

    BackupRun.objects.filter(pk=run.pk).update(status=BackupRun.Status.SUCCEEDED, active_user=None)
    done = admin_a_client.get(url, headers=POLL)
    assert done.status_code == 286 and ">Queued</span>" not in done.content.decode()
    assert done.content.decode().count(">Succeeded</span>") == 4  # both users, both runs


def test_the_dashboard_poll_updates_its_numbers_too(admin_a_client, world):
    users = make_users(world.org_a, 2)
    make_finished_run(users[1])
    run = _active_run(users[0])
    url = reverse("backups:dashboard", args=[world.org_a.code])

    running = admin_a_client.get(url, headers=POLL).content.decode()
    stats = running.split('<section class="cards" id="dashboard-stats" hx-swap-oob="true">')[1]
    assert '<div class="stat-value">1 <span class="stat-of">/ 2</span></div>' in stats

    BackupRun.objects.filter(pk=run.pk).update(
        status=BackupRun.Status.SUCCEEDED, active_user=None, finished_at=timezone.now()
    )
    done = admin_a_client.get(url, headers=POLL)
    stats = done.content.decode().split('id="dashboard-stats" hx-swap-oob="true">')[1]
    assert done.status_code == 286
    assert '<div class="stat-value">2 <span class="stat-of">/ 2</span></div>' in stats


def test_the_users_tab_poll_updates_the_table_and_the_last_read_line(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    job = DirectoryJob.objects.create(configuration=configuration, kind="import", status="running")
    url = reverse("o365:configuration-users", args=[world.org_a.code])

    before = admin_a_client.get(url, headers=POLL).content.decode()
    assert "No users read yet" in before and "Not read from Microsoft 365 yet" in before
    assert '<div id="directory-users" hx-swap-oob="true">' in before
    assert '<span class="muted" id="users-read" hx-swap-oob="true">' in before

    make_users(world.org_a, 3, configuration=configuration)
    configuration.users_synced_at = job.created_at
    configuration.save(update_fields=["users_synced_at"])
    DirectoryJob.objects.filter(pk=job.pk).update(status="succeeded", users_seen=3, created=3)
    after = admin_a_client.get(url, headers=POLL)
    html = after.content.decode()
    assert after.status_code == 286
    assert "No users read yet" not in html and "User 2" in html
    assert "Last read from Microsoft 365" in html and "<dt>Created</dt><dd>3</dd>" in html


def test_a_job_message_sits_in_the_live_messages_and_leaves_with_the_last_poll(
    admin_a_client, world, django_capture_on_commit_callbacks
):
    user = make_users(world.org_a, 1)[0]
    start = reverse(
        "backups:start-user-backup", args=[world.org_a.code, user.configuration.code, user.graph_id]
    )
    with mock.patch.object(BackupRun, "send_many", return_value=0):
        page = admin_a_client.post(start, follow=True).content.decode()
    assert '<div id="job-messages"><ul class="messages"><li class="message job success"' in page
    assert f"Backing up {user}." in page

    url = reverse("backups:backups", args=[world.org_a.code])
    assert admin_a_client.get(url, headers=POLL).status_code == 200
    BackupRun.objects.filter(directory_user=user).update(status="succeeded", active_user=None)
    done = admin_a_client.get(url, headers=POLL)
    assert done.status_code == 286 and CLEAR_JOB_MESSAGES in done.content.decode()


def test_other_messages_stay_out_of_the_live_messages(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    page = admin_a_client.post(
        reverse("o365:configuration-delete", args=[world.org_a.code, configuration.code]),
        follow=True,
    ).content.decode()
    assert f"Deleted {configuration.name}." in page
    assert '<div id="job-messages"><ul class="messages"></ul></div>' in page


def test_the_backups_page_polls_until_the_runs_of_backup_now_appear(admin_a_client, world):
    """Backup now of a configuration creates its runs in a task: the page has nothing active
    to show before they appear, and polls anyway."""
    user = make_users(world.org_a, 1)[0]
    url = reverse("backups:backups", args=[world.org_a.code])
    start = reverse(
        "backups:start-configuration-backup", args=[world.org_a.code, user.configuration.code]
    )
    with mock.patch("backups.tasks.fan_out_backups.delay"):
        page = admin_a_client.post(start, follow=True).content.decode()
    assert "Their backups are being queued." in page and _poll_attributes(url) in page
    assert admin_a_client.get(url, headers=POLL).status_code == 200

    run = _active_run(user, status=BackupRun.Status.QUEUED)  # the fan-out ran
    assert admin_a_client.get(url, headers=POLL).status_code == 200
    BackupRun.objects.filter(pk=run.pk).update(status="succeeded", active_user=None)
    assert admin_a_client.get(url, headers=POLL).status_code == 286
    assert "hx-get" not in admin_a_client.get(url).content.decode()


def test_a_backup_now_that_finds_everyone_running_waits_for_no_fan_out(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    run = _active_run(user)
    url = reverse("backups:backups", args=[world.org_a.code])
    start = reverse(
        "backups:start-configuration-backup", args=[world.org_a.code, user.configuration.code]
    )
    with mock.patch("backups.tasks.fan_out_backups.delay"):
        admin_a_client.post(start)
    BackupRun.objects.filter(pk=run.pk).update(status="succeeded", active_user=None)
    assert admin_a_client.get(url, headers=POLL).status_code == 286


def test_a_restore_on_a_users_history_keeps_it_polling(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    restore = RestoreJob.objects.create(
        organization=world.org_a,
        source_user=user,
        target_user=user,
        as_of_run=make_finished_run(user),
        paths=["/Documents"],
        status="running",
    )
    url = reverse(
        "backups:backup-user-history",
        args=[world.org_a.code, user.configuration.code, user.graph_id],
    )
    assert _poll_attributes(url) in admin_a_client.get(url).content.decode()
    RestoreJob.objects.filter(pk=restore.pk).update(status="succeeded")
    done = admin_a_client.get(url, headers=POLL)
    assert done.status_code == 286 and "<h2>Restores</h2>" in done.content.decode()
