import pytest
from django.core.management import CommandError, call_command

from backups.models import FileVersion
from backups.storage import store_for


def test_a_sound_store_passes(tenant, capsys):
    tenant.backup()
    call_command("verify_store", "--organization", tenant.organization.name)
    assert "sound" in capsys.readouterr().out


def test_it_reports_corrupt_and_deleted_chunks(tenant, capsys):
    tenant.backup()
    versions = [v for v in FileVersion.objects.filter(is_folder=False) if v.chunks]
    corrupted, deleted = versions[0], versions[1]
    store = store_for(tenant.organization)
    key = store.chunk_key(corrupted.chunk_ids[0])
    data = bytearray(store.backend.get(key))
    data[len(data) // 2] ^= 0x01
    store.backend.put(key, bytes(data))
    store.backend.delete(store.chunk_key(deleted.chunk_ids[-1]))

    with pytest.raises(CommandError, match="problems found"):
        call_command("verify_store")

    out = capsys.readouterr().out
    assert f"{deleted.path} (version {deleted.pk}): damaged chunks: 1 (missing)" in out
    assert f"chunk {deleted.chunk_ids[-1]} is missing" in out
    assert f"{corrupted.path} (version {corrupted.pk}): damaged chunks: 1 (corrupt)" in out
    assert f"chunk {corrupted.chunk_ids[0]} is unreadable" in out


def test_a_sample_still_checks_that_every_chunk_exists(tenant, capsys):
    tenant.backup()
    version = next(v for v in FileVersion.objects.filter(is_folder=False) if v.chunks)
    store_for(tenant.organization).delete_chunk(version.chunk_ids[0])

    with pytest.raises(CommandError):
        call_command("verify_store", "--sample", "0.01")
    assert version.path in capsys.readouterr().out
