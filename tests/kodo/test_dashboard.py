"""The Dashboard: protected users, the last 24 hours of backups, data stored and its growth,
running tasks; a fixed number of queries."""

import datetime as dt
import re
import uuid
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backups.activity import GROWTH_DAYS, growth_chart
from backups.models import BackupRun, DriveState, FileVersion
from o365.models import DirectoryJob
from tests.factories import make_account, make_finished_run, make_users

MB = 1_000_000


def _age(run, **delta):
    when = timezone.now() - dt.timedelta(**delta)
    BackupRun.objects.filter(pk=run.pk).update(created_at=when, started_at=when, finished_at=when)
    return run


def _version(run, item_id, size, *, is_folder=False, end_run=None):
    drive, _ = DriveState.objects.get_or_create(
        directory_user=run.directory_user,
        drive_id=f"drive-{run.directory_user.pk}",
        defaults={"organization_id": run.organization_id},
    )
    return FileVersion.objects.create(
        organization_id=run.organization_id,
        drive=drive,
        item_id=item_id,
        path=f"/{item_id}",
        name=item_id,
        is_folder=is_folder,
        size=size,
        first_run=run,
        end_run=end_run,
    )


@pytest.fixture
def data(world):
    """Organization A: 4 directory users, 3 of them with Kodo accounts; runs of every result."""
    users = make_users(world.org_a, 4)
    for i, user in enumerate(users[:3]):
        user.account = make_account(f"person{i}@alpha.example", world.org_a, role="user")
        user.save()
    ok = make_finished_run(users[0], bytes_stored=3 * MB)
    partial = make_finished_run(users[1], status=BackupRun.Status.PARTIAL, bytes_stored=2 * MB)
    make_finished_run(users[2], status=BackupRun.Status.FAILED, bytes_stored=MB)
    make_finished_run(users[3], bytes_stored=MB)  # no Kodo account: protected all the same
    _age(make_finished_run(users[0], bytes_stored=5 * MB), days=3)  # older than 24 hours
    _age(make_finished_run(users[0], bytes_stored=7 * MB), days=GROWTH_DAYS + 5)  # before the chart
    running = BackupRun.objects.create(
        organization=world.org_a,
        configuration=users[2].configuration,
        directory_user=users[2],
        active_user=users[2],
        status=BackupRun.Status.RUNNING,
        started_at=timezone.now(),
        bytes_stored=MB,
    )
    job = DirectoryJob.objects.create(
        configuration=users[0].configuration,
        kind=DirectoryJob.Kind.SYNC,
        status=DirectoryJob.Status.RUNNING,
    )
    _version(ok, "a", 100)
    _version(partial, "b", 50)
    _version(ok, "folder", 0, is_folder=True)
    _version(ok, "old", 1000, end_run=partial)  # replaced: not current
    # Organization B's data counts nowhere in A.
    other = make_users(world.org_b, 1)[0]
    _version(make_finished_run(other, bytes_stored=99 * MB), "x", 12345)
    return {"users": users, "running": running, "job": job}


def test_it_shows_the_numbers_of_the_organization(admin_a_client, world, data):
    response = admin_a_client.get(f"/o/{world.org_a.code}/")

    assert response.status_code == 200
    stats = response.context["stats"]
    # a completed backup protects a user, with a Kodo account or not (the failed one does not)
    assert (stats.users_protected, stats.users_total) == (3, 4)
    assert {status: count for status, _, _, count in stats.results} == {
        "succeeded": 2,
        "partial": 1,
        "failed": 1,
        "skipped": 0,
        "canceled": 0,
    }
    assert stats.runs_last_day == 4
    assert stats.active_runs == 1
    assert stats.bytes_stored == (3 + 2 + 1 + 1 + 5 + 7 + 1) * MB
    assert (stats.current_files, stats.current_size) == (2, 150)
    assert stats.running_runs == [data["running"]]
    assert stats.running_jobs == [data["job"]]


def test_growth_is_cumulative_per_day_over_thirty_days(admin_a_client, world, data):
    stats = admin_a_client.get(f"/o/{world.org_a.code}/").context["stats"]

    assert len(stats.growth) == GROWTH_DAYS
    days = [day for day, _ in stats.growth]
    assert days == sorted(days) and days[-1] - days[0] == dt.timedelta(days=GROWTH_DAYS - 1)
    values = [value for _, value in stats.growth]
    assert values == sorted(values)
    assert values[0] == 7 * MB  # what was stored before the period
    three_days_ago = (
        (timezone.now() - dt.timedelta(days=3))
        .astimezone(zoneinfo.ZoneInfo(world.org_a.time_zone))
        .date()
    )
    i = days.index(three_days_ago)
    assert values[i] - values[i - 1] == 5 * MB
    assert values[-1] - values[-2] == (3 + 2 + 1 + 1 + 1) * MB  # today's runs
    assert values[-1] == stats.bytes_stored
    assert stats.growth_last_period == stats.bytes_stored - 7 * MB


def test_it_draws_the_chart_as_inline_svg_without_styles(admin_a_client, world, data):
    page = admin_a_client.get(f"/o/{world.org_a.code}/").content.decode()

    svg = re.search(r"<svg class=\"chart\".*?</svg>", page, re.S).group(0)
    points = re.search(r'<polyline class="chart-line" points="([^"]+)"', svg).group(1).split()
    assert len(points) == GROWTH_DAYS
    assert svg.count("<circle") == GROWTH_DAYS
    assert "style=" not in page and "<script>" not in page and "<style" not in page


def test_it_links_running_tasks(admin_a_client, world, data):
    page = admin_a_client.get(f"/o/{world.org_a.code}/").content.decode()

    assert f"/o/{world.org_a.code}/backups/runs/{data['running'].code}/" in page
    assert str(data["job"].code) in page
    assert f"/o/{world.org_a.code}/tasks/" in page


def test_an_empty_organization_has_a_flat_chart(admin_a_client, world):
    response = admin_a_client.get(f"/o/{world.org_a.code}/")

    stats = response.context["stats"]
    assert (stats.users_protected, stats.users_total, stats.bytes_stored) == (0, 0, 0)
    assert all(value == 0 for _, value in stats.growth)
    assert b"No tasks are running" in response.content
    assert b"<svg" in response.content


def test_it_keeps_the_services_not_enabled_notice(admin_a_client, world):
    world.org_a.services_enabled = False
    world.org_a.save()
    assert b"Services are not enabled" in admin_a_client.get(f"/o/{world.org_a.code}/").content


def test_queries_do_not_grow_with_the_data(
    admin_a_client, world, data, django_assert_max_num_queries
):
    url = f"/o/{world.org_a.code}/"
    with CaptureQueriesContext(connection) as small:
        admin_a_client.get(url)

    users = make_users(world.org_a, 15, configuration=data["users"][0].configuration)
    for i, user in enumerate(users):
        run = _age(make_finished_run(user, bytes_stored=MB), days=i % 10)
        _version(run, f"item-{i}", 10)
        BackupRun.objects.create(
            organization=world.org_a,
            configuration=user.configuration,
            directory_user=user,
            active_user=user,
        )
    DirectoryJob.objects.create(
        configuration=make_users(world.org_a, 1)[0].configuration, kind=DirectoryJob.Kind.IMPORT
    )

    with django_assert_max_num_queries(len(small.captured_queries)):
        response = admin_a_client.get(url)
    stats = response.context["stats"]
    assert stats.active_runs == 16 and len(stats.running_jobs) == 2
    with django_assert_max_num_queries(11):  # 9, and the alerts' 2 (backups/overview.py)
        admin_a_client.get(url)


def test_growth_chart_points_span_the_box():
    day = dt.date(2026, 1, 1)
    chart = growth_chart(
        [(day + dt.timedelta(days=i), i * 10) for i in range(5)], width=100, height=60
    )

    xs = [float(p.split(",")[0]) for p in chart.line.split()]
    ys = [float(p.split(",")[1]) for p in chart.line.split()]
    assert xs[0] == chart.left and xs[-1] == 100 - chart.right
    assert ys[0] == chart.baseline_y and ys[-1] == chart.top
    assert chart.max_value == 40 and chart.first_label == "Jan 01"


def test_outsider_does_not_see_the_dashboard(admin_b_client, world):
    assert admin_b_client.get(f"/o/{world.org_a.code}/").status_code == 404


def test_unknown_organization_gives_404(admin_a_client):
    assert admin_a_client.get(f"/o/{uuid.uuid4()}/").status_code == 404


def test_it_says_the_results_in_words(admin_a_client, world, data):
    page = admin_a_client.get(f"/o/{world.org_a.code}/").content.decode()
    for words in ("2 succeeded", "1 partially succeeded", "1 failed", "0 skipped", "0 canceled"):
        assert words in page
