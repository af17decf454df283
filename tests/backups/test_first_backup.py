from backups.models import BackupRun, FileVersion, RunIssue
from backups.storage import iter_version_content
from backups.store import quickxorhash


def test_it_stores_every_file_and_verifies_hashes(tenant):
    tenant.sim.reset_stats()
    run = tenant.backup()

    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    expected = tenant.sim_files()
    versions = {v.path: v for v in FileVersion.objects.current().filter(is_folder=False)}
    assert set(versions) == set(expected)
    for path, info in expected.items():
        version = versions[path]
        content = b"".join(iter_version_content(version))
        assert len(content) == info["size"] == version.size
        assert quickxorhash(content) == info["quickXorHash"] == version.quickxorhash
    assert run.files_downloaded == run.files_seen == len(expected)
    assert run.bytes_downloaded == sum(i["size"] for i in expected.values())
    assert 0 < run.bytes_stored
    assert tenant.sim.stats()["downloads"] == len(expected)


def test_it_restores_bit_for_bit(tenant):
    tenant.backup()
    for version in FileVersion.objects.current().filter(is_folder=False)[:5]:
        assert b"".join(iter_version_content(version)) == tenant.sim.file_bytes(
            tenant.users[1].graph_id, version.item_id
        )


def test_it_records_folders_with_paths(tenant):
    tenant.backup()
    folders = {i["path"] for i in tenant.sim.list_items(tenant.users[1].graph_id) if i["folder"]}
    assert folders
    assert (
        set(FileVersion.objects.current().filter(is_folder=True).values_list("path", flat=True))
        == folders
    )


def test_it_skips_malware_and_onenote_with_reasons(tenant):
    run = tenant.backup(tenant.users[0])

    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    reasons = dict(RunIssue.objects.filter(run=run).values_list("path", "reason"))
    assert reasons == {
        "/Invoice (flagged).exe": RunIssue.Reason.MALWARE,
        "/Team Notebook": RunIssue.Reason.ONENOTE,
    }
    assert run.files_skipped == 2
    assert not FileVersion.objects.filter(path__in=list(reasons)).exists()


def test_a_user_without_onedrive_is_skipped(tenant):
    run = tenant.backup(tenant.users[-1])

    assert run.status == BackupRun.Status.SKIPPED
    assert run.issues.get().reason == RunIssue.Reason.NO_ONEDRIVE
    tenant.users[-1].refresh_from_db()
    assert tenant.users[-1].onedrive == "no"
    assert run.active_user is None


def test_deleting_the_configuration_deletes_its_backup_records(tenant):
    tenant.backup()
    tenant.configuration.delete()
    assert not FileVersion.objects.exists() and not BackupRun.objects.exists()
