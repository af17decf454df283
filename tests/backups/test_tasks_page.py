"""The Tasks page: backup runs and user import / synchronization jobs in one list, filtered."""

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from backups.models import BackupRun
from o365.models import DirectoryJob
from tests.factories import make_finished_run, make_users


def _url(world):
    return f"/o/{world.org_a.code}/tasks/"


def _created(obj, days):
    when = timezone.now() - dt.timedelta(days=days)
    type(obj).objects.filter(pk=obj.pk).update(created_at=when)
    obj.refresh_from_db()
    return obj


def _shown(response):
    return [task.obj for task in response.context["tasks"]]


@pytest.fixture
def tasks(world):
    users = make_users(world.org_a, 3)
    configuration = users[0].configuration
    users[0].mail = "ann@alpha.example"
    users[0].save()
    done = _created(make_finished_run(users[0]), 1)
    partial = _created(make_finished_run(users[1], status=BackupRun.Status.PARTIAL), 2)
    failed = _created(make_finished_run(users[2], status=BackupRun.Status.FAILED), 3)
    skipped = _created(make_finished_run(users[1], status=BackupRun.Status.SKIPPED), 4)
    canceled = _created(make_finished_run(users[2], status=BackupRun.Status.CANCELED), 5)
    running = BackupRun.objects.create(
        organization=world.org_a,
        configuration=configuration,
        directory_user=users[0],
        active_user=users[0],
        status=BackupRun.Status.RUNNING,
    )
    imported = _created(
        DirectoryJob.objects.create(
            configuration=configuration,
            kind=DirectoryJob.Kind.IMPORT,
            status=DirectoryJob.Status.SUCCEEDED,
            requested_by=world.admin_a,
        ),
        10,
    )
    sync_failed = _created(
        DirectoryJob.objects.create(
            configuration=configuration,
            kind=DirectoryJob.Kind.SYNC,
            status=DirectoryJob.Status.FAILED,
        ),
        6,
    )
    sync_queued = DirectoryJob.objects.create(
        configuration=configuration, kind=DirectoryJob.Kind.SYNC
    )
    # Organization B's tasks never show in A.
    other = make_users(world.org_b, 1)[0]
    make_finished_run(other)
    DirectoryJob.objects.create(configuration=other.configuration, kind=DirectoryJob.Kind.IMPORT)
    return {
        "done": done,
        "partial": partial,
        "failed": failed,
        "skipped": skipped,
        "canceled": canceled,
        "running": running,
        "imported": imported,
        "sync_failed": sync_failed,
        "sync_queued": sync_queued,
    }


def test_it_lists_backups_and_directory_jobs_newest_first(admin_a_client, world, tasks):
    response = admin_a_client.get(_url(world))

    assert response.status_code == 200
    t = tasks
    assert _shown(response) == [
        t["sync_queued"],
        t["running"],
        t["done"],
        t["partial"],
        t["failed"],
        t["skipped"],
        t["canceled"],
        t["sync_failed"],
        t["imported"],
    ]
    page = response.content.decode()
    for label in (
        "Backup",
        "Import users",
        "Synchronize users",
        "Running",
        "Queued",
        "Succeeded",
        "Partially succeeded",
        "Failed",
        "Skipped",
        "Canceled",
    ):
        assert label in page
    assert f"/backups/runs/{t['running'].code}/cancel/" in page
    assert f"/backups/runs/{t['done'].code}/cancel/" not in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type=backup", ["running", "done", "partial", "failed", "skipped", "canceled"]),
        ("type=import", ["imported"]),
        ("type=synchronize", ["sync_queued", "sync_failed"]),
        ("status=running", ["running"]),
        ("status=queued", ["sync_queued"]),
        ("status=succeeded", ["done", "imported"]),
        ("status=partial", ["partial"]),
        ("status=failed", ["failed", "sync_failed"]),
        ("status=skipped", ["skipped"]),
        ("status=canceled", ["canceled"]),
        ("type=synchronize&status=failed", ["sync_failed"]),
        ("type=import&status=skipped", []),
        ("user=ANN@alpha", ["running", "done"]),
        ("user=admin@alpha.example", ["imported"]),
    ],
)
def test_filters(admin_a_client, world, tasks, query, expected):
    response = admin_a_client.get(f"{_url(world)}?{query}")

    assert response.status_code == 200
    assert _shown(response) == [tasks[name] for name in expected]


def test_date_range_filter_uses_the_organization_time_zone(admin_a_client, world, tasks):
    zone = zoneinfo.ZoneInfo(world.org_a.time_zone)

    def day(obj):
        return obj.created_at.astimezone(zone).date().isoformat()

    response = admin_a_client.get(
        _url(world), {"since": day(tasks["skipped"]), "until": day(tasks["partial"])}
    )

    assert _shown(response) == [tasks["partial"], tasks["failed"], tasks["skipped"]]


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "type=mail",
        "since=yesterday",
        "since=2026-02-03&until=2026-02-01",
        "user=" + "x" * 300,
    ],
)
def test_bad_filters_give_a_form_error(admin_a_client, world, tasks, query):
    response = admin_a_client.get(f"{_url(world)}?{query}")

    assert response.status_code == 200
    assert response.context["form"].errors
    assert b'class="error' in response.content or b'class="errors' in response.content
    assert response.context["tasks"] == []


def test_it_pages_a_long_list_in_constant_queries(
    admin_a_client, world, django_assert_max_num_queries
):
    users = make_users(world.org_a, 60)
    for user in users:
        make_finished_run(user)
    DirectoryJob.objects.create(
        configuration=users[0].configuration,
        kind=DirectoryJob.Kind.IMPORT,
        status=DirectoryJob.Status.SUCCEEDED,
    )

    with django_assert_max_num_queries(10):
        first = admin_a_client.get(_url(world))
    second = admin_a_client.get(_url(world), {"page": 2, "type": "backup"})

    assert len(first.context["tasks"]) == 50 and first.context["page"].paginator.count == 61
    assert len(second.context["tasks"]) == 10
    assert b"page=2" in first.content and b"type=backup&amp;page=1" in second.content


def test_the_live_fragment_is_done_when_nothing_runs(admin_a_client, world, tasks):
    poll = {"HX-Request": "true"}
    running = admin_a_client.get(_url(world), headers=poll)
    assert running.status_code == 200 and b"<html" not in running.content

    finished = admin_a_client.get(_url(world), {"status": "succeeded"}, headers=poll)
    assert finished.status_code == 286 and b"<html" not in finished.content
    page = admin_a_client.get(_url(world)).content.decode()
    assert f'hx-get="/o/{world.org_a.code}/tasks/" hx-trigger="every 2s"' in page
    filtered = admin_a_client.get(_url(world), {"status": "succeeded"}).content.decode()
    assert "hx-get" not in filtered


def test_the_menu_has_tasks(admin_a_client, world):
    page = admin_a_client.get(_url(world)).content.decode()
    assert f'href="/o/{world.org_a.code}/tasks/" aria-current="page">Tasks' in page


def test_outsider_gets_404(admin_b_client, world, tasks):
    assert admin_b_client.get(_url(world)).status_code == 404
