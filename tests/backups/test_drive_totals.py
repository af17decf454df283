"""Each drive's current files and bytes (DriveState.current_files / current_bytes), kept by the
database triggers of migration 0010_drive_totals whatever writes the versions, and the Dashboard
numbers read from them; "protected users" alike on the Dashboard and the overview."""

import datetime as dt

from django.db.models import Count, Sum
from django.utils import timezone

from backups import activity, overview
from backups.actions import do_prune_organization
from backups.models import BackupRun, DriveState, FileVersion
from tests.factories import make_account, make_finished_run, make_users


def counted(drive) -> tuple[int, int]:
    """(files, bytes) of the drive's current versions, counted from the versions themselves."""
    current = FileVersion.objects.filter(drive=drive, end_run__isnull=True, is_folder=False)
    numbers = current.aggregate(files=Count("pk"), size=Sum("size"))
    return numbers["files"], numbers["size"] or 0


def assert_totals_right(organization):
    drives = list(DriveState.objects.filter(organization=organization))
    assert drives
    for drive in drives:
        assert (drive.current_files, drive.current_bytes) == counted(drive)
    stats = activity.dashboard(organization)
    files = FileVersion.objects.for_organization(organization).current().filter(is_folder=False)
    assert (stats.current_files, stats.current_size) == (
        files.count(),
        sum(files.values_list("size", flat=True)),
    )


def change_files(tenant):
    """Add, edit, rename, move and delete files (and a folder with what it holds)."""
    user = tenant.users[1].graph_id
    files = sorted(tenant.sim_files())
    modified, renamed, moved, deleted = files[:4]
    tenant.sim.add_file(user, "/New folder/added.txt", content=b"hello kodo")
    tenant.sim.modify_file(user, modified, size=12_345)
    tenant.sim.rename_item(user, renamed, "renamed.bin")
    tenant.sim.move_item(user, moved, "/New folder")
    tenant.sim.delete_item(user, deleted)
    folder = next(
        i["path"]
        for i in tenant.sim.list_items(user)
        if i["folder"]
        and i["path"] != "/New folder"
        and any(p.startswith(i["path"] + "/") for p in tenant.sim_files())
    )
    tenant.sim.delete_item(user, folder)


def test_the_totals_follow_backups_that_add_change_and_delete_files(tenant):
    first = tenant.backup()
    assert first.status == BackupRun.Status.SUCCEEDED, first.error
    drive = DriveState.objects.get(directory_user=tenant.users[1])
    assert drive.current_files == len(tenant.sim_files()) > 0
    assert_totals_right(tenant.organization)

    change_files(tenant)
    second = tenant.backup()

    assert second.status == BackupRun.Status.SUCCEEDED, second.error
    assert second.files_deleted > 1 and second.files_moved >= 2 and second.files_downloaded == 2
    drive.refresh_from_db()
    assert drive.current_files == len(tenant.sim_files())
    assert drive.current_bytes == sum(i["size"] for i in tenant.sim_files().values())
    assert_totals_right(tenant.organization)


def test_prune_leaves_the_totals_right(tenant):
    tenant.backup()
    change_files(tenant)
    tenant.backup()
    before = DriveState.objects.get(directory_user=tenant.users[1])

    # Years later: the deleted files' versions expire, older versions go by the default policy.
    report = do_prune_organization(tenant.organization, now=timezone.now() + dt.timedelta(3650))

    assert report.versions_removed > 0
    after = DriveState.objects.get(pk=before.pk)
    assert (after.current_files, after.current_bytes) == (
        before.current_files,
        before.current_bytes,
    )
    assert_totals_right(tenant.organization)


def test_versions_written_directly_and_deleted_count_too(world):
    user = make_users(world.org_a, 1)[0]
    run = make_finished_run(user)
    drive = DriveState.objects.create(
        organization=world.org_a, directory_user=user, drive_id="b!direct"
    )

    def version(item_id, size, **fields):
        return FileVersion.objects.create(
            organization=world.org_a,
            drive=drive,
            item_id=item_id,
            path=f"/{item_id}",
            name=item_id,
            size=size,
            first_run=run,
            **fields,
        )

    a, b = version("a", 10), version("b", 20)
    version("folder", 0, is_folder=True)
    version("gone", 99, end_run=run, deleted=True)
    assert_totals_right(world.org_a)
    FileVersion.objects.filter(pk=a.pk).update(size=15)
    b.delete()
    drive.refresh_from_db()
    assert (drive.current_files, drive.current_bytes) == (1, 15)
    user.delete()  # a user's removal takes its drive and versions along
    assert not DriveState.objects.filter(pk=drive.pk).exists()


def test_a_user_removed_from_microsoft_365_stays_protected_on_both_pages(world):
    """One definition (overview.protected_users): a completed backup, succeeded or partial,
    also after the user left Microsoft 365; the Dashboard counts it among its users too."""
    users = make_users(world.org_a, 4)
    for i, user in enumerate(users):
        user.account = make_account(f"removed{i}@alpha.example", world.org_a, role="user")
        user.save()
    make_finished_run(users[0])
    make_finished_run(users[1], status=BackupRun.Status.PARTIAL)
    make_finished_run(users[2], status=BackupRun.Status.FAILED)
    users[1].removed_at = timezone.now()
    users[1].save(update_fields=["removed_at"])
    users[2].removed_at = timezone.now()  # removed, never protected: no longer counted
    users[2].save(update_fields=["removed_at"])

    stats = activity.dashboard(world.org_a)
    usage = overview.current_usage()[world.org_a.pk]

    assert (stats.users_protected, stats.users_total) == (2, 3)
    assert usage.protected_users == stats.users_protected


def test_saving_a_stale_drive_keeps_the_totals(world):
    user = make_users(world.org_a, 1)[0]
    run = make_finished_run(user)
    drive = DriveState.objects.create(organization=world.org_a, directory_user=user, drive_id="b!s")
    FileVersion.objects.create(
        organization=world.org_a,
        drive=drive,
        item_id="a",
        path="/a",
        name="a",
        size=7,
        first_run=run,
    )

    drive.delta_link = "https://graph.example/delta?token=2"
    drive.save()  # its copy still says 0 files

    drive.refresh_from_db()
    assert (drive.current_files, drive.current_bytes, drive.delta_link) == (
        1,
        7,
        "https://graph.example/delta?token=2",
    )


def test_the_growth_reads_runs_by_day_in_the_organizations_time_zone(world):
    """Bytes stored before the chart, on each of its days and dated after today (a clock ahead:
    in no day, as before) come out as they did when every run was read."""
    world.org_a.time_zone = "Pacific/Auckland"
    world.org_a.save(update_fields=["time_zone"])
    user = make_users(world.org_a, 1)[0]
    now = timezone.now()

    def stored(bytes_stored, when):
        run = make_finished_run(user, bytes_stored=bytes_stored)
        BackupRun.objects.filter(pk=run.pk).update(created_at=when, finished_at=when)

    stored(7, now - dt.timedelta(days=activity.GROWTH_DAYS + 3))
    stored(5, now - dt.timedelta(days=2))
    stored(3, now)
    stored(1000, now + dt.timedelta(days=2))

    stats = activity.dashboard(world.org_a, now=now)

    values = [value for _, value in stats.growth]
    assert values[0] == 7 and values[-1] == stats.bytes_stored == 15
    assert values[-1] - values[-2] == 3 and values[-3] - values[-4] == 5
