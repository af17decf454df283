"""A bounded soak: several worker processes back up several users through a storm of throttling,
server errors and connection resets; one worker is SIGKILLed and replaced mid-run; a prune and a
verification run meanwhile. Every run completes by itself, every file is stored once and reads
back bit for bit, and the store verifies clean."""

import os
import signal
import subprocess
import sys

import pytest

from backups.actions import do_prune_organization, do_verify_organization, start_run
from backups.models import BackupRun, FileVersion
from backups.storage import iter_version_content, store_for
from backups.store import quickxorhash
from backups.tasks import run_backup
from kodo.celery import QUEUES
from tests.conftest import _database_url_for_workers
from tests.polling import wait_for
from tests.private_broker import private_broker

EXTRA_FILES = 25  # per user, on top of the simulator's own
DEADLINE = 300


def _storm(sim):
    for endpoint in ("download", "drive_delta", "item", "drive"):
        sim.set_fault(endpoint, "429", rate=0.05, seed=1, retry_after=1)
        sim.set_fault(endpoint, "503", rate=0.05, seed=2, retry_after=0.5)
    sim.set_fault("download", "reset", rate=0.02, seed=3, after_bytes=500)
    # Downloads stall a little: the runs last long enough for a worker to be killed mid-run.
    sim.set_fault("download", "stall", rate=0.5, seed=4, after_bytes=200, stall_seconds=0.2)


class Processes:
    def __init__(self, env, log_dir):
        self.env, self.log_dir, self.started = env, log_dir, []

    def start(self, name, *arguments):
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "kodo", *arguments],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.started.append(process)
        return process

    def worker(self, name):
        return self.start(
            name,
            "worker",
            "-Q",
            ",".join(QUEUES),
            "-n",
            f"{name}@%h",
            "--pool=threads",
            "--concurrency=2",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        )

    def kill(self, process):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self):
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.parametrize("worker_processes", [2, 4])
@pytest.mark.django_db(transaction=True)
def test_a_storm_with_a_killed_worker_ends_with_every_file_stored_once(
    tenant, tmp_path, settings, worker_processes
):
    users = [user for user in tenant.users if user.onedrive != "missing"][:3]
    for user in users:
        for n in range(EXTRA_FILES):
            tenant.sim.add_file(user.graph_id, f"/Soak/file-{n:02}.bin", size=8_000 + 991 * n)
    # Malware-flagged files and OneNote notebooks are skipped by design.
    expected = {
        user.pk: {
            path: info
            for path, info in tenant.sim_files(user).items()
            if not info["malware"] and not info["package"]
        }
        for user in users
    }
    broker = private_broker(tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_workers(),
        "KODO_STORE_URL": str(settings.KODO_STORE_URL),
        **broker.env,
        "KODO_BACKUP_STALE_SECONDS": "4",
        "KODO_RECOVERY_SECONDS": "1",
        # a run deferred by the organization's fair share waits in the memory of a worker;
        # if that is the worker killed, its message is lost and recovery sends it again
        "KODO_JOB_RESEND_SECONDS": "20",
        "KODO_BACKUP_DOWNLOAD_THREADS": "2",
        "KODO_GRAPH_BACKOFF_SECONDS": "0.2",
    }
    processes = Processes(env, tmp_path)
    _storm(tenant.sim)
    try:
        processes.start("beat", "beat", "--loglevel=INFO", "--schedule", str(tmp_path / "beat"))
        workers = [processes.worker(f"soak{n}") for n in range(worker_processes)]
        runs = [start_run(user, BackupRun.Trigger.COMMAND, enqueue=False)[0] for user in users]
        for run in runs:
            broker.send(run_backup, run.pk, run.organization_id)

        def some_files_recorded():
            return (
                sum(
                    BackupRun.objects.filter(pk__in=[r.pk for r in runs]).values_list(
                        "files_downloaded", flat=True
                    )
                )
                >= 10
            )

        wait_for(some_files_recorded, 120, "the workers record some files")
        processes.kill(workers[0])
        processes.worker("replacement")
        # Retention and verification run while the backups go on.
        do_prune_organization(tenant.organization)
        do_verify_organization(tenant.organization, 1.0)

        def all_finished():
            return not BackupRun.objects.filter(
                pk__in=[r.pk for r in runs], status__in=BackupRun.ACTIVE_STATUSES
            ).exists()

        wait_for(all_finished, DEADLINE, "every run ends by itself")
    finally:
        processes.stop_all()
        tenant.sim.clear_faults()

    for run in runs:
        run.refresh_from_db()
        assert run.status == BackupRun.Status.SUCCEEDED, (run.directory_user, run.error)
    store = store_for(tenant.organization)
    for user in users:
        versions = FileVersion.objects.filter(drive__directory_user=user, is_folder=False)
        files = expected[user.pk]
        # Stored once: one version per file, none recorded twice across the takeover.
        assert sorted(v.path for v in versions) == sorted(files)
        for version in versions:
            content = b"".join(iter_version_content(version, store))
            assert len(content) == files[version.path]["size"]
            assert quickxorhash(content) == files[version.path]["quickXorHash"]
    verification = do_verify_organization(tenant.organization, 1.0)
    assert verification.problems == 0
