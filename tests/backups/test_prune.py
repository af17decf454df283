import datetime as dt
import uuid

import pytest
from django.core.management import call_command
from django.utils import timezone

from backups.actions import do_prune_organization
from backups.models import BackupRun, DriveState, FileVersion, UnreferencedChunk
from backups.prune import compact_store
from backups.storage import backend, iter_version_content, store_for
from backups.store import QuickXorHash
from backups.tasks import prune_organization
from schedules.models import Schedule
from tests.factories import make_finished_run, make_users

GRACE = dt.timedelta(hours=24)


def quickxorhash(data: bytes) -> str:
    hasher = QuickXorHash()
    hasher.update(data)
    return hasher.b64digest()


class Drive:
    """A user's backed-up OneDrive written straight through the store and the version rows."""

    def __init__(self, organization):
        self.organization = organization
        self.user = make_users(organization, 1)[0]
        self.state = DriveState.objects.create(
            organization=organization, directory_user=self.user, drive_id=uuid.uuid4().hex
        )
        self.store = store_for(organization)

    def run(self, at=None, **fields) -> BackupRun:
        run = make_finished_run(self.user, **fields)
        if at is not None:
            BackupRun.objects.filter(pk=run.pk).update(created_at=at, started_at=at, finished_at=at)
            run.refresh_from_db()
        return run

    def save(self, item_id, *pieces: bytes, run=None) -> FileVersion:
        """A new current version of the item holding `pieces`, one chunk each."""
        run = run or self.run()
        refs = [self.store.put_chunk(piece) for piece in pieces]
        FileVersion.objects.filter(drive=self.state, item_id=item_id, end_run__isnull=True).update(
            end_run=run
        )
        content = b"".join(pieces)
        return FileVersion.objects.create(
            organization=self.organization,
            drive=self.state,
            item_id=item_id,
            path=f"/{item_id}.bin",
            name=f"{item_id}.bin",
            size=len(content),
            quickxorhash=quickxorhash(content),
            chunks=[[r.id, r.size] for r in refs],
            first_run=run,
        )

    def delete(self, item_id, at=None):
        FileVersion.objects.filter(drive=self.state, item_id=item_id, end_run__isnull=True).update(
            end_run=self.run(at), deleted=True
        )

    def orphan(self, data: bytes) -> str:
        """A stored chunk no version refers to (yet)."""
        return self.store.put_chunk(data).id

    def versions(self, item_id):
        return list(
            FileVersion.objects.filter(drive=self.state, item_id=item_id).order_by("first_run_id")
        )


def keep(drive, versions=30, deleted_days=365, name="Nightly", scope=Schedule.Scope.CHOSEN):
    schedule = Schedule.objects.create(
        organization=drive.organization,
        configuration=drive.user.configuration,
        name=name,
        scope=scope,
        keep_versions=versions,
        keep_deleted_for=deleted_days,
        keep_deleted_unit=Schedule.RetentionUnit.DAYS,
    )
    schedule.users.add(drive.user)
    return schedule


def content(version) -> bytes:
    return b"".join(iter_version_content(version))


def assert_every_version_restores(organization, capsys):
    for version in FileVersion.objects.for_organization(organization).filter(is_folder=False):
        data = content(version)
        assert (len(data), quickxorhash(data)) == (version.size, version.quickxorhash)
    call_command("verify_store", "--organization", organization.name)
    assert "The backup store is sound." in capsys.readouterr().out


@pytest.fixture
def drive(world, store_dir):
    return Drive(world.org_a)


def test_it_keeps_the_current_version_and_the_newest_older_ones(drive):
    keep(drive, versions=3)
    saved = [drive.save("a", f"edit {i}".encode()) for i in range(5)]

    report = do_prune_organization(drive.organization)

    assert report.versions_removed == 2
    assert drive.versions("a") == saved[2:]
    assert drive.versions("a")[-1].end_run is None


def test_keeping_one_version_keeps_only_the_current_one(drive):
    keep(drive, versions=1)
    drive.save("a", b"old")
    current = drive.save("a", b"new")

    do_prune_organization(drive.organization)

    assert drive.versions("a") == [current]
    assert content(current) == b"new"


def test_users_no_schedule_covers_get_the_default_policy(drive, settings):
    settings.KODO_DEFAULT_KEEP_VERSIONS = 2
    keep(drive, versions=1).users.clear()  # a schedule for nobody
    saved = [drive.save("a", f"edit {i}".encode()) for i in range(4)]

    do_prune_organization(drive.organization)

    assert drive.versions("a") == saved[2:]


def test_the_most_generous_schedule_wins(drive):
    keep(drive, versions=1, name="Everyone", scope=Schedule.Scope.ALL)
    keep(drive, versions=3, name="Chosen")
    disabled = keep(drive, versions=10, name="Disabled")
    Schedule.objects.filter(pk=disabled.pk).update(enabled=False)
    saved = [drive.save("a", f"edit {i}".encode()) for i in range(5)]

    do_prune_organization(drive.organization)

    assert drive.versions("a") == saved[2:]


def test_folder_versions_stay_while_the_folder_does(drive):
    keep(drive, versions=1)
    for name in ("Docs", "Documents"):
        FileVersion.objects.filter(drive=drive.state, item_id="f", end_run__isnull=True).update(
            end_run=drive.run()
        )
        FileVersion.objects.create(
            organization=drive.organization,
            drive=drive.state,
            item_id="f",
            path=f"/{name}",
            name=name,
            is_folder=True,
            first_run=drive.run(),
        )

    assert do_prune_organization(drive.organization).versions_removed == 0


def test_deleted_items_are_kept_for_the_period_then_removed(drive):
    keep(drive, versions=30, deleted_days=10)
    kept = drive.save("kept", b"still here")
    drive.save("gone", b"first")
    drive.save("gone", b"second")
    deleted_at = timezone.now()
    drive.delete("gone", at=deleted_at)

    early = do_prune_organization(drive.organization, now=deleted_at + dt.timedelta(days=9))
    assert early.versions_removed == 0 and len(drive.versions("gone")) == 2

    late = do_prune_organization(drive.organization, now=deleted_at + dt.timedelta(days=11))
    assert late.versions_removed == 2
    assert drive.versions("gone") == [] and drive.versions("kept") == [kept]


def test_a_deleted_item_that_came_back_keeps_its_history_by_count(drive):
    keep(drive, versions=30, deleted_days=1)
    drive.save("a", b"before")
    drive.delete("a", at=timezone.now() - dt.timedelta(days=5))
    drive.save("a", b"restored from the recycle bin")

    assert do_prune_organization(drive.organization).versions_removed == 0
    assert len(drive.versions("a")) == 2


def test_a_chunk_a_kept_version_shares_is_never_removed(drive, capsys):
    keep(drive, versions=2)
    drive.save("a", b"shared head", b"only in v1", b"shared with b")
    drive.save("a", b"shared head", b"v2 tail")
    drive.save("a", b"v3")
    drive.save("b", b"shared with b")
    now = timezone.now()

    first = do_prune_organization(drive.organization, now=now)
    later = do_prune_organization(drive.organization, now=now + GRACE + dt.timedelta(hours=1))

    assert first.versions_removed == 1
    assert (first.chunks_marked, later.chunks_removed) == (1, 1)
    gone = drive.store.put_chunk(b"only in v1")  # stores it again, reporting whether it was there
    assert gone.new
    drive.store.delete_chunk(gone.id)
    assert_every_version_restores(drive.organization, capsys)


def test_an_unreferenced_chunk_is_marked_then_removed_after_the_grace_period(drive, capsys):
    drive.save("a", b"kept content")
    orphan = drive.orphan(b"stored by a backup that never recorded its version")
    now = timezone.now()

    first = do_prune_organization(drive.organization, now=now)
    assert first.chunks_marked == 1 and first.chunks_removed == 0
    assert drive.store.has_chunk(orphan)

    within = do_prune_organization(drive.organization, now=now + GRACE - dt.timedelta(minutes=1))
    assert within.chunks_removed == 0 and drive.store.has_chunk(orphan)

    after = do_prune_organization(drive.organization, now=now + GRACE + dt.timedelta(minutes=1))
    assert after.chunks_removed == 1 and after.bytes_removed > 0
    assert not drive.store.has_chunk(orphan)

    final = do_prune_organization(drive.organization, now=now + 2 * GRACE + dt.timedelta(hours=1))
    assert final.chunks_deleted == 1
    assert not UnreferencedChunk.objects.exists()
    assert_every_version_restores(drive.organization, capsys)


def test_a_chunk_a_late_version_refers_to_is_not_removed(drive, capsys):
    # A running backup stores the chunk, prune marks it, then the backup records its version.
    running = drive.run(status=BackupRun.Status.RUNNING)
    BackupRun.objects.filter(pk=running.pk).update(finished_at=None)
    late = drive.orphan(b"stored before its version was recorded")
    now = timezone.now()
    assert do_prune_organization(drive.organization, now=now).chunks_marked == 1

    drive.save("a", b"stored before its version was recorded", run=running)
    report = do_prune_organization(drive.organization, now=now + GRACE + dt.timedelta(hours=1))

    assert report.chunks_removed == 0 and drive.store.has_chunk(late)
    assert not UnreferencedChunk.objects.exists()
    assert_every_version_restores(drive.organization, capsys)


def test_a_backup_that_reused_a_chunk_just_before_it_was_held_aside_gets_it_back(drive, capsys):
    # A backup finds the chunk already stored (so does not write it), prune takes it out of the
    # store, then the backup records the version that refers to it.
    reused = drive.orphan(b"reused content")
    now = timezone.now()
    do_prune_organization(drive.organization, now=now)
    do_prune_organization(drive.organization, now=now + GRACE + dt.timedelta(hours=1))
    assert not drive.store.has_chunk(reused)
    FileVersion.objects.create(
        organization=drive.organization,
        drive=drive.state,
        item_id="a",
        path="/a.bin",
        name="a.bin",
        size=14,
        quickxorhash=quickxorhash(b"reused content"),
        chunks=[[reused, 14]],
        first_run=drive.run(),
    )

    report = do_prune_organization(drive.organization, now=now + GRACE + dt.timedelta(hours=2))

    assert report.chunks_restored == 1 and report.chunks_missing == 0
    assert drive.store.has_chunk(reused)
    assert not UnreferencedChunk.objects.exists()
    assert_every_version_restores(drive.organization, capsys)


def test_pruning_one_organization_never_touches_another(world, store_dir):
    alpha, beta = Drive(world.org_a), Drive(world.org_b)
    for drive in (alpha, beta):
        keep(drive, versions=1)
        drive.save("a", b"old content")
        drive.save("a", b"new content")
        drive.orphan(b"nobody's")
    beta_chunks = set(beta.store.iter_chunk_ids())
    beta_versions = list(FileVersion.objects.for_organization(world.org_b))
    now = timezone.now()

    do_prune_organization(world.org_a, now=now)
    report = do_prune_organization(world.org_a, now=now + GRACE + dt.timedelta(hours=1))

    assert report.chunks_removed == 2
    assert set(beta.store.iter_chunk_ids()) == beta_chunks
    assert list(FileVersion.objects.for_organization(world.org_b)) == beta_versions
    assert not UnreferencedChunk.objects.filter(organization=world.org_b).exists()


def test_a_dry_run_changes_nothing(drive, store_dir):
    keep(drive, versions=1)
    drive.save("a", b"old content")
    drive.save("a", b"new content")
    drive.orphan(b"nobody's")
    now = timezone.now()
    do_prune_organization(drive.organization, now=now, dry_run=True)
    assert not UnreferencedChunk.objects.exists()
    do_prune_organization(drive.organization, now=now)  # removes the old version, marks 2 chunks
    drive.save("b", b"one more")
    drive.save("b", b"and its successor")
    files = sorted(p for p in store_dir.rglob("*") if p.is_file())
    rows = list(FileVersion.objects.values_list("pk", flat=True))
    marks = list(UnreferencedChunk.objects.values_list("pk", "chunk_id", "marked_at", "held_at"))

    report = do_prune_organization(
        drive.organization, now=now + GRACE + dt.timedelta(hours=1), dry_run=True
    )

    assert (report.versions_removed, report.chunks_marked, report.chunks_removed) == (1, 1, 2)
    assert report.bytes_removed > 0
    assert sorted(p for p in store_dir.rglob("*") if p.is_file()) == files
    assert list(FileVersion.objects.values_list("pk", flat=True)) == rows
    assert (
        list(UnreferencedChunk.objects.values_list("pk", "chunk_id", "marked_at", "held_at"))
        == marks
    )


def test_the_command_prints_what_it_removed(drive, capsys):
    keep(drive, versions=1)
    drive.save("a", b"old content")
    drive.save("a", b"new content")

    call_command("prune", "--organization", drive.organization.name, "--dry-run")
    assert "would remove 1 file versions" in capsys.readouterr().out
    call_command("prune", "--organization", str(drive.organization.code))
    out = capsys.readouterr().out
    assert f"[{drive.organization}] removed 1 file versions" in out
    assert "1 chunks newly unreferenced" in out


def test_the_command_then_frees_what_was_deleted_from_the_store_packs(drive, capsys):
    store = backend()
    store.put("orgs/gone/object", b"x" * 100)
    store.delete("orgs/gone/object")
    store.idle_seconds = 0  # the pack has not been written to for long enough

    call_command("prune", "--organization", drive.organization.name)

    assert "Store packs: 1 deleted, 0 rewritten, 100" in capsys.readouterr().out
    assert compact_store() == "Store packs: 0 deleted, 0 rewritten, 0\xa0bytes freed"


def test_the_task_prunes_one_organization(drive):
    keep(drive, versions=1)
    drive.save("a", b"old content")
    drive.save("a", b"new content")

    assert "removed 1 file versions" in prune_organization(drive.organization.pk)
    assert len(drive.versions("a")) == 1


def test_real_backups_restore_bit_for_bit_after_pruning(tenant, capsys):
    user = tenant.users[1]
    schedule = Schedule.objects.create(
        organization=tenant.organization,
        configuration=tenant.configuration,
        name="Nightly",
        keep_versions=2,
    )
    tenant.backup()
    path = sorted(tenant.sim_files())[0]
    for size in (10_000, 20_000):
        tenant.sim.modify_file(user.graph_id, path, size=size)
        assert tenant.backup().status == BackupRun.Status.SUCCEEDED
    item_id = tenant.sim.get_item(user.graph_id, path)["id"]
    assert FileVersion.objects.filter(item_id=item_id).count() == 3
    now = timezone.now()

    report = do_prune_organization(tenant.organization, now=now)
    do_prune_organization(tenant.organization, now=now + GRACE + dt.timedelta(hours=1))

    assert report.versions_removed == 1 and schedule.keep_versions == 2
    kept = FileVersion.objects.filter(item_id=item_id).order_by("first_run_id")
    assert [v.size for v in kept] == [10_000, 20_000]
    assert quickxorhash(content(kept[1])) == tenant.sim_files()[path]["quickXorHash"]
    assert_every_version_restores(tenant.organization, capsys)
