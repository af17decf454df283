"""A Redis restart in the middle of a backup: the worker survives it (kodo/broker.py), the run
completes, and the worker takes new work once Redis is back."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings
from kombu import Connection

from backups.actions import start_run
from backups.models import BackupRun
from backups.tasks import run_backup
from kodo.celery import QUEUES
from tests.conftest import _database_url_for_workers
from tests.factories import mirror_one
from tests.polling import wait_for

FILES = 30
OUTAGE_SECONDS = 21  # as long as the outage that made the worker exit

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Redis:
    """A Redis server of the test's own, on loopback, that the test stops and starts."""

    def __init__(self, port, folder):
        self.port, self.folder = port, folder

    def start(self):
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            check=True,
        )
        wait_for(self.answers, 20, "Redis starts")

    def stop(self):
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True
        )
        wait_for(lambda: not self.answers(), 20, "Redis stops")

    def answers(self):
        done = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True)
        return done.stdout.strip() == b"PONG"


@pytest.mark.django_db(transaction=True)
def test_a_worker_survives_a_redis_restart_in_the_middle_of_a_backup(tenant, tmp_path):
    redis = Redis(_free_port(), tmp_path)
    redis.start()
    broker = f"redis://127.0.0.1:{redis.port}/0"
    user = mirror_one(tenant, "outage")
    for n in range(FILES):
        tenant.sim.add_file(user.graph_id, f"/Docs/file-{n:02}.bin", size=20_000 + 997 * n)
    tenant.sim.set_fault("download", "stall", after_bytes=1000, stall_seconds=0.5)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_workers(),
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "KODO_STORE_URL": str(settings.KODO_STORE_URL),
        "KODO_VAR_DIR": str(settings.VAR_DIR),
        "KODO_BACKUP_DOWNLOAD_THREADS": "2",
    }
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "kodo",
            "worker",
            "-Q",
            ",".join(QUEUES),
            "--pool=threads",
            "--concurrency=2",
            "--loglevel=INFO",
        ],
        env=env,
        start_new_session=True,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # The task goes to the test's Redis, as the web server would send it.
        run, _ = start_run(user, BackupRun.Trigger.COMMAND, enqueue=False)
        with Connection(broker) as connection:
            run_backup.apply_async((run.pk, run.organization_id), connection=connection)

        def started():
            run.refresh_from_db()
            return run.files_downloaded >= 2

        wait_for(started, 120, "the backup starts")
        redis.stop()
        time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for something
        assert worker.poll() is None, _tail("the worker exited while Redis was down", log_path)
        redis.start()
        tenant.sim.clear_faults()
        # The worker reconnects and takes new work.
        after, _ = start_run(tenant.users[1], BackupRun.Trigger.COMMAND, enqueue=False)
        with Connection(broker) as connection:
            run_backup.apply_async((after.pk, after.organization_id), connection=connection)

        def finished():
            run.refresh_from_db()
            after.refresh_from_db()
            return not (run.is_active or after.is_active) or worker.poll() is not None

        wait_for(finished, 180, "the run ends")
        assert worker.poll() is None, _tail("the worker exited after Redis came back", log_path)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        log.close()
        redis.stop()
        tenant.sim.clear_faults()
    output = log_path.read_text(errors="replace")
    assert "Unrecoverable error" not in output, output[-4000:]
    assert run.status == BackupRun.Status.SUCCEEDED, (run.error, output[-4000:])
    assert after.status == BackupRun.Status.SUCCEEDED, (after.error, output[-4000:])


def _tail(message, path):
    return f"{message}:\n{path.read_text(errors='replace')[-4000:]}"
