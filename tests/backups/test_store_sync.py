"""The engine's group commit: chunk renames are made durable (ChunkStore.sync) before the rows
that point to them are recorded; runs reuse the configuration's Graph session."""

from backups.models import BackupRun, FileVersion
from backups.store import ChunkStore


def test_no_file_version_is_recorded_when_the_store_cannot_sync(tenant, monkeypatch):
    def fail(self):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(ChunkStore, "sync", fail)
    run = tenant.backup()
    assert run.status == BackupRun.Status.FAILED
    assert "Input/output error" in run.error
    assert not FileVersion.objects.filter(
        drive__directory_user=tenant.users[1], is_folder=False
    ).exists()


def test_every_recorded_file_was_synced_first(tenant, monkeypatch):
    recorded_at_sync = []
    real = ChunkStore.sync

    def sync(self):
        real(self)
        recorded_at_sync.append(FileVersion.objects.filter(is_folder=False).count())

    monkeypatch.setattr(ChunkStore, "sync", sync)
    run = tenant.backup()
    assert run.status == BackupRun.Status.SUCCEEDED and run.files_downloaded > 0
    # each sync ran before its batch was recorded: never with more rows than the run downloaded
    # before it, and the last sync came before the last batch
    assert recorded_at_sync and recorded_at_sync[-1] < run.files_downloaded


def test_runs_reuse_the_configurations_session(tenant, monkeypatch):
    from o365.graph import transport

    built = []
    real = transport.build_session
    monkeypatch.setattr(
        transport, "build_session", lambda *a, **k: built.append(1) or real(*a, **k)
    )
    first = tenant.backup()
    after_first = len(built)
    second = tenant.backup()
    assert first.status == second.status == BackupRun.Status.SUCCEEDED
    assert len(built) == after_first  # no new session (nor connections) for the second run
    # and the shared session was left open for the next run
    from o365.connection import graph_client_for

    client = graph_client_for(tenant.configuration, shared_session=True)
    assert client.session.adapters["https://"].poolmanager.pools
    client.close()
    assert client.session.adapters["https://"].poolmanager.pools
