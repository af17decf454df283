"""Damaged chunks (corrupt or missing) are named by verify_store, recorded, never deduplicated
onto, and healed by the next backup from the current OneDrive content; older versions that
used them are reported lost."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from backups.models import BackupRun, DamagedChunk, FileVersion, Verification
from backups.storage import iter_version_content, store_for
from backups.store import quickxorhash
from tests.backups.test_prune import Drive
from tests.factories import mirror_one


def corrupt(organization, chunk_id):
    store = store_for(organization)
    key = store.chunk_key(chunk_id)
    data = bytearray(store.backend.get(key))
    data[len(data) // 2] ^= 0x01
    store.backend.put(key, bytes(data))


def remove(organization, chunk_id):
    store_for(organization).delete_chunk(chunk_id)


def restores(version) -> bool:
    data = b"".join(iter_version_content(version))
    return (len(data), quickxorhash(data)) == (version.size, version.quickxorhash)


def verify(capsys):
    with pytest.raises(CommandError, match="problems found"):
        call_command("verify_store")
    return capsys.readouterr().out


def test_verify_store_names_every_version_using_a_damaged_chunk_and_counts_it_once(
    world, store_dir, capsys
):
    drive = Drive(world.org_a)
    old = drive.save("a", b"shared content")
    drive.save("a", b"newer content")
    copy = drive.save("b", b"shared content")
    other = drive.save("c", b"untouched")
    shared = old.chunk_ids[0]
    corrupt(world.org_a, shared)

    out = verify(capsys)

    assert out.count(f"chunk {shared} is unreadable") == 1
    for version in (old, copy):
        assert f"{version.path} (version {version.pk}): damaged chunks: 1 (corrupt)" in out
    assert other.path not in out
    verification = Verification.objects.get(organization=world.org_a)
    assert (verification.damaged_chunks, verification.versions_affected, verification.problems) == (
        1,
        2,
        1,
    )
    assert verification.status == Verification.Status.PROBLEMS
    assert list(DamagedChunk.objects.values_list("chunk_id", "problem")) == [
        (shared, DamagedChunk.Problem.CORRUPT)
    ]
    assert set(FileVersion.objects.filter(damage=FileVersion.Damage.DAMAGED)) == {old, copy}


def test_a_damaged_chunk_is_never_a_deduplication_target(tenant, capsys):
    owner, other = tenant.users[1], mirror_one(tenant, "copy.keeper@contoso.example")
    tenant.backup(owner)
    path = sorted(tenant.sim_files(owner))[0]
    version = FileVersion.objects.get(path=path, end_run__isnull=True)
    corrupt(tenant.organization, version.chunk_ids[0])
    verify(capsys)
    tenant.sim.copy_file(other.graph_id, "/Copy.bin", owner.graph_id, path)

    run = tenant.backup(other)

    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    assert run.bytes_stored > 0  # written again, not deduplicated onto the corrupt chunk
    assert not DamagedChunk.objects.exists()
    version.refresh_from_db()
    assert version.damage == FileVersion.Damage.SOUND and restores(version)
    call_command("verify_store")
    assert "The backup store is sound." in capsys.readouterr().out


def test_the_next_backup_heals_current_versions_and_reports_older_ones_lost(
    tenant, admin_a_client, capsys
):
    user = tenant.users[1]
    tenant.backup()
    edited, untouched = sorted(tenant.sim_files())[:2]
    tenant.sim.modify_file(user.graph_id, edited, size=7_777)
    tenant.backup()
    older, newer = FileVersion.objects.filter(path=edited).order_by("first_run_id")
    intact = FileVersion.objects.get(path=untouched)
    corrupt(tenant.organization, older.chunk_ids[0])
    corrupt(tenant.organization, newer.chunk_ids[0])
    remove(tenant.organization, intact.chunk_ids[0])
    verify(capsys)
    tenant.sim.reset_stats()

    run = tenant.backup()

    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    assert run.files_downloaded == 2 and tenant.sim.stats()["downloads"] == 2
    assert run.lost_versions == [{"path": edited, "version": older.pk}]
    older.refresh_from_db()
    assert older.damage == FileVersion.Damage.LOST
    assert list(DamagedChunk.objects.values_list("chunk_id", flat=True)) == [older.chunk_ids[0]]
    for path in (edited, untouched):
        current = FileVersion.objects.get(path=path, end_run__isnull=True)
        assert restores(current) and current.damage == FileVersion.Damage.SOUND
    for version in (newer, intact):  # the versions the download replaced heal with it
        version.refresh_from_db()
        assert restores(version) and version.damage == FileVersion.Damage.SOUND
    page = admin_a_client.get(
        reverse("backups:backup-run", args=[tenant.organization.code, run.code])
    )
    assert "Lost versions" in page.content.decode() and edited in page.content.decode()
    dashboard = admin_a_client.get(reverse("backups:dashboard", args=[tenant.organization.code]))
    assert edited in dashboard.content.decode()

    again = tenant.backup()  # reported once
    assert again.files_downloaded == 0 and again.lost_versions == []
