"""The tallies kept by the triggers of migration 0011_run_tallies whatever writes the runs
(DirectoryUser.backed_up, StoredBytes), the numbers read from them (Dashboard, overview), and the
Backups page's users read per configuration (backups.views.BackupUsers), and the Tasks page's
rows (backups.activity.TaskRows)."""

import datetime as dt
import zoneinfo
from collections import defaultdict

from django.core.paginator import Paginator
from django.db.models import Sum
from django.utils import timezone

from backups import activity, overview
from backups.models import BackupRun, StoredBytes
from backups.views import BackupUsers
from o365.models import DirectoryJob, DirectoryUser
from tests.factories import make_configuration, make_finished_run, make_users

DONE = (BackupRun.Status.SUCCEEDED, BackupRun.Status.PARTIAL)


def assert_backed_up_right():
    for user in DirectoryUser.objects.all():
        completed = BackupRun.objects.filter(directory_user=user, status__in=DONE).exists()
        assert user.backed_up is completed, user


def assert_stored_bytes_right():
    expected = defaultdict(int)
    for run in BackupRun.objects.all():
        expected[(run.organization_id, StoredBytes.quarter_of(run.created_at))] += run.bytes_stored
    kept = defaultdict(int)
    for row in StoredBytes.objects.all():
        kept[(row.organization_id, row.quarter)] += row.bytes_stored
    assert {k: v for k, v in kept.items() if v} == {k: v for k, v in expected.items() if v}


def test_backed_up_follows_the_runs_of_every_status(world):
    user, other = make_users(world.org_a, 2)
    run = BackupRun.objects.create(
        organization=world.org_a, configuration=user.configuration, directory_user=user
    )
    assert_backed_up_right()
    assert not DirectoryUser.objects.get(pk=user.pk).backed_up

    run.status = BackupRun.Status.PARTIAL
    run.save()
    assert DirectoryUser.objects.get(pk=user.pk).backed_up
    failed = make_finished_run(user, status=BackupRun.Status.FAILED)
    assert_backed_up_right()

    # The completed run goes to the other user (an update), then is failed: neither keeps it.
    BackupRun.objects.filter(pk=run.pk).update(directory_user=other)
    assert_backed_up_right()
    assert DirectoryUser.objects.get(pk=other.pk).backed_up
    BackupRun.objects.filter(pk=run.pk).update(status=BackupRun.Status.FAILED)
    assert_backed_up_right()
    assert not DirectoryUser.objects.filter(backed_up=True).exists()

    make_finished_run(user)
    make_finished_run(user)
    succeeded = BackupRun.objects.filter(directory_user=user, status=BackupRun.Status.SUCCEEDED)
    succeeded.first().delete()
    assert_backed_up_right()
    assert DirectoryUser.objects.get(pk=user.pk).backed_up  # one completed run left
    BackupRun.objects.filter(status=BackupRun.Status.SUCCEEDED).delete()
    failed.delete()
    assert_backed_up_right()
    assert not DirectoryUser.objects.filter(backed_up=True).exists()


def test_saving_a_stale_copy_of_a_user_keeps_backed_up(world):
    user = make_users(world.org_a, 1)[0]
    stale = DirectoryUser.objects.get(pk=user.pk)
    make_finished_run(user)
    stale.display_name = "Renamed"
    stale.save()
    saved = DirectoryUser.objects.get(pk=user.pk)
    assert saved.backed_up and saved.display_name == "Renamed"


def test_stored_bytes_follow_inserts_increments_moves_and_deletes(world):
    user = make_users(world.org_a, 1)[0]
    theirs = make_users(world.org_b, 1)[0]
    now = timezone.now()
    runs = [make_finished_run(user, bytes_stored=1000 * (i + 1)) for i in range(3)]
    BackupRun.objects.bulk_create(
        BackupRun(
            organization=world.org_b,
            configuration=theirs.configuration,
            directory_user=theirs,
            bytes_stored=77,
        )
        for _ in range(2)
    )
    assert_stored_bytes_right()

    runs[0].add(bytes_stored=500, files_downloaded=1)  # the engine's F() update
    runs[1].add(files_downloaded=1)  # bytes unchanged
    assert_stored_bytes_right()

    # Dated into another quarter, then moved to the other organization.
    BackupRun.objects.filter(pk=runs[1].pk).update(created_at=now - dt.timedelta(days=3))
    assert_stored_bytes_right()
    BackupRun.objects.filter(pk=runs[2].pk).update(organization=world.org_b)
    assert_stored_bytes_right()

    runs[0].delete()
    BackupRun.objects.filter(organization=world.org_b).delete()
    assert_stored_bytes_right()
    total = StoredBytes.objects.filter(organization=world.org_a).aggregate(t=Sum("bytes_stored"))
    assert total["t"] == 2000


def _dated_runs(world, days):
    user = make_users(world.org_a, 1)[0]
    now = timezone.now()
    for i, hours in enumerate(range(0, 24 * days, 7)):
        run = make_finished_run(user, bytes_stored=1000 + i)
        BackupRun.objects.filter(pk=run.pk).update(created_at=now - dt.timedelta(hours=hours))
    run = make_finished_run(user, bytes_stored=5)  # a clock ahead: after the chart
    BackupRun.objects.filter(pk=run.pk).update(created_at=now + dt.timedelta(days=2))


def test_the_chart_from_stored_bytes_equals_the_chart_from_the_runs(world):
    _dated_runs(world, days=activity.GROWTH_DAYS + 5)
    today = timezone.now().date()
    days = [today - dt.timedelta(days=activity.GROWTH_DAYS - 1 - i) for i in range(31)]
    # Kathmandu is 5:45 ahead of UTC: its midnights start quarter hours too.
    for zone in ("Europe/Warsaw", "Asia/Kathmandu", "America/St_Johns", "UTC"):
        tz = zoneinfo.ZoneInfo(zone)
        starts = [dt.datetime.combine(day, dt.time(), tz) for day in days]
        kept = activity._stored_per_day(world.org_a, days, starts)
        assert kept == activity._stored_per_day_from_runs(world.org_a, days, starts), zone
        assert kept[0] and kept[1] == 5


def test_a_day_not_starting_a_quarter_hour_is_read_from_the_runs(world):
    _dated_runs(world, days=3)
    today = timezone.now().date()
    days = [today - dt.timedelta(days=2 - i) for i in range(4)]
    odd = dt.timezone(dt.timedelta(minutes=7))
    starts = [dt.datetime.combine(day, dt.time(), odd) for day in days]
    assert activity._stored_per_day(world.org_a, days, starts) == (
        activity._stored_per_day_from_runs(world.org_a, days, starts)
    )


def test_the_dashboard_and_the_overview_count_from_the_tallies(world):
    kept, left, never = make_users(world.org_a, 3)
    make_finished_run(kept, bytes_stored=300)
    make_finished_run(left, status=BackupRun.Status.PARTIAL, bytes_stored=200)
    make_finished_run(never, status=BackupRun.Status.FAILED)
    DirectoryUser.objects.filter(pk=left.pk).update(removed_at=timezone.now())

    stats = activity.dashboard(world.org_a)
    assert (stats.users_total, stats.users_protected, stats.bytes_stored) == (3, 2, 500)
    row = next(r for r in overview.overview() if r.organization == world.org_a)
    assert (row.usage.protected_users, row.usage.bytes_stored) == (2, 500)


def test_backup_users_pages_follow_the_order_across_configurations(
    world, django_assert_max_num_queries
):
    # Configurations of 1, 2, 7 and 4 users (names out of creation order), one user removed.
    for name, count in (("Delta", 1), ("Alpha", 2), ("Charlie", 7), ("Bravo", 4)):
        make_users(world.org_a, count, configuration=make_configuration(world.org_a, name=name))
    DirectoryUser.objects.filter(configuration__name="Charlie", display_name="User 3").update(
        removed_at=timezone.now()
    )
    make_users(world.org_b, 3)
    expected = list(
        DirectoryUser.objects.filter(configuration__organization=world.org_a, removed_at=None)
        .order_by("configuration__name", "display_name", "user_principal_name")
        .values_list("pk", flat=True)
    )
    assert len(expected) == 13
    for per_page in (1, 2, 3, 5, 50):
        paginator = Paginator(BackupUsers(world.org_a), per_page)
        assert paginator.count == 13
        shown = []
        for number in paginator.page_range:
            with django_assert_max_num_queries(5):  # the sizes, and at most four reads
                page = Paginator(BackupUsers(world.org_a), per_page).page(number)
                shown += [user.pk for user in page]
        assert shown == expected, per_page


def test_backup_users_carry_their_last_run_and_last_good_backup(world):
    user = make_users(world.org_a, 1)[0]
    good = make_finished_run(user)
    last = make_finished_run(user, status=BackupRun.Status.FAILED)
    BackupRun.objects.filter(pk=good.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))

    (listed,) = BackupUsers(world.org_a)[0:50]
    assert listed.last_run_id == last.pk and listed.last_good_at == good.finished_at


def test_task_rows_pages_merge_the_kinds_newest_first(world, django_assert_max_num_queries):
    # Backups and directory jobs interleaved in time, some at the same moment (ties by id).
    users = make_users(world.org_a, 2)
    now = timezone.now()
    for i in range(9):
        run = make_finished_run(users[i % 2])
        BackupRun.objects.filter(pk=run.pk).update(created_at=now - dt.timedelta(minutes=i // 2))
        if i % 3 == 0:
            job = DirectoryJob.objects.create(
                configuration=users[0].configuration,
                kind=DirectoryJob.Kind.SYNC,
                status=DirectoryJob.Status.SUCCEEDED,
            )
            DirectoryJob.objects.filter(pk=job.pk).update(created_at=now - dt.timedelta(minutes=i))
    make_finished_run(make_users(world.org_b, 1)[0])
    everything = list(activity.task_rows(world.org_a)[0:1000])
    expected = sorted(everything, key=lambda row: (row[2], row[1]), reverse=True)
    assert len(everything) == 12 and everything == expected
    for per_page in (1, 2, 5, 50):
        shown = []
        for number in Paginator(activity.task_rows(world.org_a), per_page).page_range:
            with django_assert_max_num_queries(2):  # the count, the page
                shown += Paginator(activity.task_rows(world.org_a), per_page).page(number)
        assert shown == expected, per_page
    assert activity.task_rows(world.org_a, types=["restore"])[0:50] == []
