"""SIGKILL a real process in the middle of a backup: the store and the database stay
consistent, the delta cursor does not move, and the next run continues without downloading again
what was already recorded."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from backups.actions import do_run_inline
from backups.models import BackupRun, DriveState, FileVersion
from backups.storage import iter_version_content, store_for
from backups.store import quickxorhash
from tests.conftest import _database_url_for_workers
from tests.factories import mirror_one

ROOT = Path(__file__).resolve().parents[2]
FILES = 40
KILL_AFTER = 6  # files recorded by the process before it is killed


def _start_backup_process(user, organization):
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_workers(),
        "KODO_STORE_URL": str(settings.KODO_STORE_URL),
        "KODO_VAR_DIR": str(settings.VAR_DIR),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "backup",
            "--organization",
            str(organization.code),
            "--user",
            user.email,
            "--wait",
            "--threads",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_for_recorded_files(process, user, count, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = BackupRun.objects.filter(directory_user=user).first()
        if run is not None and run.files_downloaded >= count:
            return run
        if process.poll() is not None:
            pytest.fail(f"The backup process ended early:\n{process.stdout.read().decode()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"The backup process recorded fewer than {count} files in {timeout} s.")


def _assert_versions_restore(user, sim_files):
    """Every recorded file version's chunks are in the store and give back its content."""
    store = store_for(user.configuration.organization)
    versions = list(FileVersion.objects.filter(drive__directory_user=user, is_folder=False))
    for version in versions:
        content = b"".join(iter_version_content(version, store))
        expected = sim_files[version.path]
        assert len(content) == version.size == expected["size"]
        assert quickxorhash(content) == version.quickxorhash == expected["quickXorHash"]
    # No half-written object either: every chunk in the store opens and authenticates.
    for chunk_id in store.iter_chunk_ids():
        store.verify_chunk(chunk_id)
    return versions


@pytest.mark.django_db(transaction=True)
def test_a_killed_backup_leaves_a_consistent_state_and_the_next_run_continues(tenant):
    user = mirror_one(tenant, "kill.me")
    for n in range(FILES):
        tenant.sim.add_file(user.graph_id, f"/Docs/file-{n:02}.bin", size=20_000 + 997 * n)
    sim_files = tenant.sim_files(user)
    # Every download stalls a little after its first bytes: the run lasts long enough to be
    # killed in the middle, with downloads in flight.
    tenant.sim.set_fault("download", "stall", after_bytes=1000, stall_seconds=0.3)

    process = _start_backup_process(user, tenant.organization)
    try:
        run = _wait_for_recorded_files(process, user, KILL_AFTER)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
    tenant.sim.clear_faults()

    run.refresh_from_db()
    assert run.status == BackupRun.Status.RUNNING  # nobody closed it: the process died
    assert KILL_AFTER <= run.files_downloaded < FILES
    recorded = _assert_versions_restore(user, sim_files)
    assert len(recorded) == run.files_downloaded
    assert all(version.first_run_id == run.pk for version in recorded)
    state = DriveState.objects.get(directory_user=user)
    assert state.delta_link == "" and state.last_run is None  # the cursor did not move

    # The worker is gone: once its heartbeat is old, the next delivery takes the run over.
    BackupRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    tenant.sim.reset_stats()
    run = do_run_inline(run, threads=4, client_options={"backoff_base": 0.01})

    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    assert run.attempts == 2 and run.files_downloaded == FILES
    downloads = tenant.sim.stats()["downloads_by_item"]
    recorded_ids = {version.item_id for version in recorded}
    assert not recorded_ids & set(downloads)  # what was recorded is not downloaded again
    assert set(downloads) == {info["id"] for info in sim_files.values()} - recorded_ids
    assert all(count == 1 for count in downloads.values())
    versions = _assert_versions_restore(user, sim_files)
    assert len(versions) == FILES
    assert FileVersion.objects.current().filter(drive=state, is_folder=False).count() == FILES
    state.refresh_from_db()
    assert state.delta_link and state.last_run_id == run.pk
