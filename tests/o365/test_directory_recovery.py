"""IMPORT USERS / SYNCHRONIZE USERS jobs follow the one job protocol (kodo.jobs): the staleness
setting, the takeover of a silent worker, the outbox and recovery, and a worker SIGKILLed in the
middle of an import whose job completes by itself."""

import datetime as dt
import os
import signal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from kodo.jobs import LostClaim, recover_jobs
from o365 import actions
from o365.directory import DirectorySync
from o365.models import DirectoryJob
from o365.tasks import run_directory_job
from tests.backups.test_recovery import _start_worker, _stop
from tests.conftest import _database_url_for_workers
from tests.factories import make_configuration, sim_configuration
from tests.polling import wait_for
from tests.private_broker import private_broker


@pytest.fixture
def sent(monkeypatch):
    """The directory jobs handed to the broker."""
    jobs = []
    monkeypatch.setattr(
        run_directory_job, "apply_async", lambda args, **options: jobs.append(args[0])
    )
    return jobs


def _job(
    configuration,
    *,
    status=DirectoryJob.Status.QUEUED,
    ago=0,
    heartbeat_ago=None,
    sent_ago=None,
    attempts=0,
    **fields,
):
    now = timezone.now()
    job = DirectoryJob.objects.create(configuration=configuration, kind=DirectoryJob.Kind.IMPORT)
    DirectoryJob.objects.filter(pk=job.pk).update(
        status=status,
        attempts=attempts,
        created_at=now - dt.timedelta(seconds=ago),
        started_at=None
        if status == DirectoryJob.Status.QUEUED
        else now - dt.timedelta(seconds=ago),
        heartbeat_at=None if heartbeat_ago is None else now - dt.timedelta(seconds=heartbeat_ago),
        sent_at=None if sent_ago is None else now - dt.timedelta(seconds=sent_ago),
        **fields,
    )
    job.refresh_from_db()
    return job


def test_a_directory_job_whose_worker_went_silent_is_sent_again(world, sent):

    lost = _job(
        make_configuration(world.org_a, name="Lost"),
        status=DirectoryJob.Status.RUNNING,
        ago=900,
        heartbeat_ago=300,
        sent_ago=900,
        attempts=1,
    )
    alive = _job(
        make_configuration(world.org_a, name="Alive"),
        status=DirectoryJob.Status.RUNNING,
        ago=900,
        heartbeat_ago=5,
        sent_ago=900,
        attempts=1,
    )

    report = recover_jobs()

    assert sent == [lost.pk] and report.resumed == 1
    alive.refresh_from_db()
    assert alive.status == DirectoryJob.Status.RUNNING


def test_a_directory_job_never_sent_is_sent(world, sent, settings):

    never_sent = _job(make_configuration(world.org_a, name="A"), ago=120)
    waiting = _job(make_configuration(world.org_a, name="B"), ago=120, sent_ago=60)

    assert recover_jobs().sent == 1

    assert sent == [never_sent.pk]
    never_sent.refresh_from_db()
    waiting.refresh_from_db()
    assert never_sent.sent_at is not None
    assert waiting.sent_at < timezone.now() - dt.timedelta(seconds=30)


def test_a_directory_job_that_keeps_losing_its_worker_fails_with_the_reason(world, sent, settings):

    settings.KODO_JOB_MAX_ATTEMPTS = 3
    configuration = make_configuration(world.org_a)
    job = _job(
        configuration, status=DirectoryJob.Status.RUNNING, ago=3600, heartbeat_ago=600, attempts=3
    )

    assert recover_jobs().failed == 1

    job.refresh_from_db()
    assert sent == [] and job.status == DirectoryJob.Status.FAILED
    assert "stopped 3 times" in job.error and job.finished_at is not None
    # The configuration is free for a new import.
    assert actions.do_start_directory_job(
        configuration=configuration, kind=DirectoryJob.Kind.IMPORT, enqueue=False
    )[1]


def test_a_silent_directory_job_is_taken_over_after_the_job_staleness_setting(world, settings):
    settings.KODO_JOB_STALE_SECONDS = 120
    job = _job(
        make_configuration(world.org_a),
        status=DirectoryJob.Status.RUNNING,
        ago=600,
        heartbeat_ago=300,
        attempts=1,
        users_seen=40,
        pages_read=4,
        created=7,
    )

    taken = actions.claim_directory_job(job.pk)

    assert taken is not None and taken.attempts == 2
    # The next attempt reads the directory again: what it counts again starts from zero; the
    # accounts already created stay counted.
    assert (taken.users_seen, taken.pages_read, taken.created) == (0, 0, 7)
    assert actions.claim_directory_job(job.pk) is None  # now beating: nobody else takes it


def test_the_worker_that_lost_its_directory_job_stops_writing(world, settings):
    job = _job(make_configuration(world.org_a))
    mine = actions.claim_directory_job(job.pk)
    DirectoryJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(hours=1)
    )
    theirs = actions.claim_directory_job(job.pk)
    assert theirs is not None

    sync = DirectorySync(mine, client=None)
    mine.users_seen = 999
    with pytest.raises(LostClaim):
        sync.save_progress()
    assert not actions._finish(mine, DirectoryJob.Status.SUCCEEDED)

    job.refresh_from_db()
    assert job.users_seen == 0 and job.status == DirectoryJob.Status.RUNNING


def test_a_silent_directory_job_says_its_worker_was_lost(world, admin_a_client):
    configuration = make_configuration(world.org_a)
    job = _job(
        configuration, status=DirectoryJob.Status.RUNNING, ago=900, heartbeat_ago=900, attempts=1
    )

    page = admin_a_client.get(f"/o/{world.org_a.code}/tasks/").content.decode()

    assert "Worker lost at " in page and "attempt 2 of" in page
    assert job.phase_shown.startswith("Worker lost at ")


def test_starting_an_import_while_a_silent_one_is_active_sends_it_again(
    world, sent, django_capture_on_commit_callbacks
):
    configuration = make_configuration(world.org_a)
    silent = _job(
        configuration, status=DirectoryJob.Status.RUNNING, ago=900, heartbeat_ago=900, attempts=1
    )

    with django_capture_on_commit_callbacks(execute=True):
        job, created = actions.do_start_directory_job(
            configuration=configuration, kind=DirectoryJob.Kind.IMPORT
        )

    assert (job, created) == (silent, False) and sent == [silent.pk]


# ----- a whole worker SIGKILLed in the middle of an IMPORT USERS --------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_import_of_a_sigkilled_worker_completes_by_itself(world, m365sim, tmp_path):
    sim = m365sim.sim
    configuration = sim_configuration(world.org_a, m365sim)
    users_in_tenant = len(sim.list_users())
    # Small pages, each stalled a little: the import lasts long enough to be killed.
    sim.configure(users_delta_page_size=2)
    sim.set_fault("users_delta", "stall", after_bytes=10, stall_seconds=0.4)
    # A broker of its own: the session's workers must not take the job.
    broker = private_broker(tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_workers(),
        **broker.env,
        "KODO_JOB_STALE_SECONDS": "3",
        "KODO_RECOVERY_SECONDS": "1",
        "BEAT_SCHEDULE_FILE": str(tmp_path / "beat"),
    }
    worker = _start_worker(env)
    try:
        job, _ = actions.do_start_directory_job(
            configuration=configuration,
            kind=DirectoryJob.Kind.IMPORT,
            requested_by=world.admin_a,
            enqueue=False,
        )
        broker.send(run_directory_job, job.pk)

        def some_pages_read():
            job.refresh_from_db()
            return job.pages_read >= 3

        wait_for(some_pages_read, 120, "the worker reads a few pages of users")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        job.refresh_from_db()
        assert job.status == DirectoryJob.Status.RUNNING
        sim.clear_faults()
        sim.configure(users_delta_page_size=100)

        # Nobody asks again: a new worker's beat finds the silent job and resumes it.
        worker = _start_worker(env)

        def finished():
            job.refresh_from_db()
            return not job.is_active

        wait_for(finished, 180, "the import completes after its worker was lost")
    finally:
        _stop(worker)
        sim.clear_faults()
        sim.configure(users_delta_page_size=100)

    assert job.status == DirectoryJob.Status.SUCCEEDED, job.error
    assert job.attempts == 2
    # Counters stay true across the takeover: every user read once, every account counted once.
    assert job.users_seen == users_in_tenant
    accounts = get_user_model().objects.filter(directory_users__configuration=configuration).count()
    assert job.created + job.linked == accounts > 0
    configuration.refresh_from_db()
    assert configuration.users_synced_at is not None
