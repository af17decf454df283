"""A chunk prune marked unreferenced and a backup reuses (deduplication): whatever the order of
the backup's steps and prune's, no recorded version lacks a chunk. The dangerous orders are
played explicitly, by running one side inside a hook of the other."""

import datetime as dt

from django.core.management import call_command
from django.utils import timezone

from backups import prune
from backups.actions import do_prune_organization
from backups.engine import OneDriveBackup
from backups.models import BackupRun, FileVersion, UnreferencedChunk
from backups.storage import iter_version_content
from backups.store import quickxorhash
from tests.factories import mirror_one

GRACE = dt.timedelta(hours=24)


def marked_content(tenant):
    """A backed-up file whose versions retention removed: its chunks are stored and marked
    unreferenced by a prune. Returns (path, chunk ids, when they were marked)."""
    owner = tenant.users[1]
    tenant.backup(owner)
    path = sorted(tenant.sim_files(owner))[0]
    chunk_ids = FileVersion.objects.get(path=path).chunk_ids
    FileVersion.objects.filter(path=path).delete()
    now = timezone.now()
    assert do_prune_organization(tenant.organization, now=now).chunks_marked == len(chunk_ids)
    return path, chunk_ids, now


def copy_to_new_user(tenant, path):
    keeper = mirror_one(tenant, "keeper@contoso.example")
    tenant.sim.copy_file(keeper.graph_id, "/Kept copy.bin", tenant.users[1].graph_id, path)
    return keeper


def assert_no_version_lacks_a_chunk(tenant, capsys):
    for version in FileVersion.objects.filter(is_folder=False):
        data = b"".join(iter_version_content(version))
        assert (len(data), quickxorhash(data)) == (version.size, version.quickxorhash)
    call_command("verify_store")
    assert "The backup store is sound." in capsys.readouterr().out


def test_a_chunk_prune_holds_aside_after_a_backup_reused_it_is_back_before_the_record(
    tenant, monkeypatch, capsys
):
    path, chunk_ids, marked_at = marked_content(tenant)
    keeper = copy_to_new_user(tenant, path)
    reports = []
    record = OneDriveBackup._record_outcomes

    def prune_then_record(self, *args, **kwargs):
        # The backup found the chunks stored (reused them); prune now moves them out.
        if not reports:
            reports.append(
                do_prune_organization(
                    tenant.organization, now=marked_at + GRACE + dt.timedelta(hours=1)
                )
            )
        return record(self, *args, **kwargs)

    monkeypatch.setattr(OneDriveBackup, "_record_outcomes", prune_then_record)
    run = tenant.backup(keeper)

    assert reports[0].chunks_removed == len(chunk_ids)  # the dangerous order did happen
    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    assert run.bytes_stored == 0  # reused, not downloaded into new chunks
    assert_no_version_lacks_a_chunk(tenant, capsys)
    assert not UnreferencedChunk.objects.filter(chunk_id__in=chunk_ids).exists()
    later = do_prune_organization(tenant.organization, now=marked_at + 3 * GRACE)
    assert later.chunks_missing == 0 and later.chunks_removed == 0
    assert_no_version_lacks_a_chunk(tenant, capsys)


def test_prune_does_not_hold_aside_a_chunk_a_backup_reused_after_prune_listed_references(
    tenant, monkeypatch, capsys
):
    path, chunk_ids, marked_at = marked_content(tenant)
    keeper = copy_to_new_user(tenant, path)
    runs = []
    hold = prune._hold_if_still_marked

    def back_up_then_hold(*args, **kwargs):
        # Prune listed the references and chose what to hold; a whole backup reusing the chunks
        # records its version now, before prune moves the first chunk out.
        if not runs:
            runs.append(tenant.backup(keeper))
        return hold(*args, **kwargs)

    monkeypatch.setattr(prune, "_hold_if_still_marked", back_up_then_hold)
    report = do_prune_organization(
        tenant.organization, now=marked_at + GRACE + dt.timedelta(hours=1)
    )

    assert runs and runs[0].status == BackupRun.Status.SUCCEEDED, runs[0].error
    assert report.chunks_removed == 0
    assert_no_version_lacks_a_chunk(tenant, capsys)
