"""Jobs resume by themselves: the recovery task sends again what a lost worker or a lost message
left behind, fails what keeps dying, and a whole worker SIGKILLed mid-run ends in a completed run
without anyone asking."""

import datetime as dt
import os
import signal
import subprocess
import sys

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from backups.actions import start_run
from backups.models import BackupRun, FileVersion
from backups.tasks import run_backup
from kodo.celery import QUEUES
from kodo.jobs import recover_jobs
from tests.conftest import _database_url_for_workers
from tests.factories import mirror_one
from tests.polling import wait_for
from tests.private_broker import private_broker


@pytest.fixture
def sent(monkeypatch):
    """The runs handed to the broker (the seam between Kodo and Celery)."""
    runs = []
    monkeypatch.setattr(run_backup, "apply_async", lambda args, **options: runs.append(args[0]))
    return runs


def _run(
    user, *, status=BackupRun.Status.QUEUED, ago=0, heartbeat_ago=None, sent_ago=None, attempts=0
):
    now = timezone.now()
    run, _ = start_run(user, enqueue=False)
    BackupRun.objects.filter(pk=run.pk).update(
        status=status,
        attempts=attempts,
        created_at=now - dt.timedelta(seconds=ago),
        heartbeat_at=None if heartbeat_ago is None else now - dt.timedelta(seconds=heartbeat_ago),
        sent_at=None if sent_ago is None else now - dt.timedelta(seconds=sent_ago),
    )
    run.refresh_from_db()
    return run


def test_a_run_whose_worker_went_silent_is_sent_again(tenant, sent, settings):
    lost = _run(
        tenant.users[0],
        status=BackupRun.Status.RUNNING,
        ago=600,
        heartbeat_ago=300,
        sent_ago=600,
        attempts=1,
    )
    alive = _run(
        tenant.users[1],
        status=BackupRun.Status.RUNNING,
        ago=600,
        heartbeat_ago=5,
        sent_ago=600,
        attempts=1,
    )

    report = recover_jobs()

    assert sent == [lost.pk] and report.resumed == 1
    alive.refresh_from_db()
    assert alive.status == BackupRun.Status.RUNNING


def test_a_queued_run_never_sent_or_sent_long_ago_is_sent(tenant, sent, settings):
    settings.KODO_JOB_RESEND_SECONDS = 900
    never_sent = _run(tenant.users[0], ago=120)
    lost_message = _run(tenant.users[1], ago=3600, sent_ago=1800)
    waiting = _run(tenant.users[2], ago=3600, sent_ago=60)

    report = recover_jobs()

    assert sorted(sent) == sorted([never_sent.pk, lost_message.pk]) and report.sent == 2
    never_sent.refresh_from_db()
    waiting.refresh_from_db()
    assert never_sent.sent_at is not None
    assert waiting.sent_at < timezone.now() - dt.timedelta(seconds=30)  # left alone


def test_a_run_that_keeps_losing_its_worker_fails_with_the_reason(tenant, sent, settings):
    settings.KODO_JOB_MAX_ATTEMPTS = 3
    run = _run(
        tenant.users[1], status=BackupRun.Status.RUNNING, ago=3600, heartbeat_ago=600, attempts=3
    )

    report = recover_jobs()

    run.refresh_from_db()
    assert sent == [] and report.failed == 1
    assert run.status == BackupRun.Status.FAILED and run.active_user_id is None
    assert "stopped 3 times" in run.error
    # The user is free for a new backup.
    assert start_run(tenant.users[1], enqueue=False)[1]


def test_an_unreachable_broker_leaves_the_run_queued_for_later(tenant, monkeypatch):
    def broker_down(args, **options):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(run_backup, "apply_async", broker_down)
    run = _run(tenant.users[1], ago=120)

    assert recover_jobs().sent == 0

    run.refresh_from_db()
    assert run.status == BackupRun.Status.QUEUED and run.sent_at is None


def test_a_silent_run_says_its_worker_was_lost(tenant, settings):
    run = _run(
        tenant.users[1], status=BackupRun.Status.RUNNING, ago=600, heartbeat_ago=600, attempts=1
    )
    BackupRun.objects.filter(pk=run.pk).update(phase="Downloading 75 files")
    run.refresh_from_db()

    assert run.phase_shown.startswith("Worker lost at ")
    assert "resuming by" in run.phase_shown and "attempt 2 of" in run.phase_shown
    BackupRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
    run.refresh_from_db()
    assert run.phase_shown == "Downloading 75 files"


# ----- a whole worker SIGKILLed mid-run --------------------------------------------------

FILES = 40


def _start_worker(env):
    """A worker with its own beat (so the recovery task runs), as `make run` starts them."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "kodo",
            "worker",
            "-B",
            "-Q",
            ",".join(QUEUES),
            "--pool=threads",
            "--concurrency=2",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--schedule",
            env["BEAT_SCHEDULE_FILE"],
        ],
        env=env,
        start_new_session=True,
    )


def _stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_a_run_of_a_sigkilled_worker_completes_by_itself(tenant, tmp_path, settings):
    user = mirror_one(tenant, "killed.worker")
    for n in range(FILES):
        tenant.sim.add_file(user.graph_id, f"/Docs/file-{n:02}.bin", size=20_000 + 997 * n)
    # Downloads stall a little after their first bytes: the run lasts long enough to be killed.
    tenant.sim.set_fault("download", "stall", after_bytes=1000, stall_seconds=0.3)
    broker = private_broker(tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_workers(),
        "KODO_STORE_URL": str(settings.KODO_STORE_URL),
        **broker.env,
        "KODO_BACKUP_STALE_SECONDS": "3",
        "KODO_RECOVERY_SECONDS": "1",
        "KODO_BACKUP_DOWNLOAD_THREADS": "2",
        "BEAT_SCHEDULE_FILE": str(tmp_path / "beat"),
    }
    worker = _start_worker(env)
    try:
        run, _ = start_run(user, BackupRun.Trigger.COMMAND, enqueue=False)
        broker.send(run_backup, run.pk, run.organization_id)

        def some_files_recorded():
            run.refresh_from_db()
            return run.files_downloaded >= 4

        wait_for(some_files_recorded, 120, "the worker records a few files")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        run.refresh_from_db()
        assert run.status == BackupRun.Status.RUNNING and run.files_downloaded < FILES
        tenant.sim.clear_faults()

        # Nobody asks again: a new worker's beat finds the silent run and resumes it.
        worker = _start_worker(env)

        def finished():
            run.refresh_from_db()
            return not run.is_active

        wait_for(finished, 180, "the run completes after the worker was lost")
    finally:
        _stop(worker)
        tenant.sim.clear_faults()

    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    assert run.attempts == 2
    # Counters stay true across the takeover.
    assert run.files_downloaded == run.files_to_download == FILES
    assert (
        FileVersion.objects.current().filter(drive__directory_user=user, is_folder=False).count()
        == FILES
    )
