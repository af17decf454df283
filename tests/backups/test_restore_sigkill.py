"""A worker SIGKILLed in the middle of a restore: nobody asks again, recovery hands the job to a
new worker, which keeps every file restored, resumes each upload in flight from its saved
session (nextExpectedRanges) and sends again less than one fragment per file in flight."""

import os
import signal

import pytest
from django.conf import settings

from backups.models import FileVersion, RestoreItem, RestoreJob
from backups.tasks import run_restore
from tests.backups.restore_helpers import FRAGMENT, assert_same_content, files_under, start
from tests.backups.test_recovery import _start_worker, _stop
from tests.conftest import _database_url_for_workers
from tests.factories import mirror_one
from tests.polling import wait_for
from tests.private_broker import private_broker

FILES = 10
THREADS = 2


@pytest.mark.django_db(transaction=True)
def test_a_restore_of_a_sigkilled_worker_resumes_its_uploads_where_they_stood(tenant, tmp_path):
    user = mirror_one(tenant, "killed.restore")
    for n in range(FILES):
        tenant.sim.add_file(user.graph_id, f"/Films/{n:02}.bin", size=3 * FRAGMENT + 4321 * n)
    tenant.backup(user)
    tenant.sim.reset_stats()
    # Every fragment pauses after its first bytes: the restore is killed with uploads in flight.
    tenant.sim.set_fault("fragment", "stall", after_bytes=1000, stall_seconds=0.3)
    broker = private_broker(tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_workers(),
        "KODO_STORE_URL": str(settings.KODO_STORE_URL),
        **broker.env,
        "KODO_JOB_STALE_SECONDS": "3",
        "KODO_RECOVERY_SECONDS": "1",
        "KODO_RESTORE_UPLOAD_THREADS": str(THREADS),
        "KODO_RESTORE_FRAGMENT_BYTES": str(FRAGMENT),
        "BEAT_SCHEDULE_FILE": str(tmp_path / "beat"),
    }
    job = start(tenant, user, enqueue=False)
    worker = _start_worker(env)
    try:
        broker.send(run_restore, job.pk, job.organization_id)

        def mid_upload():
            job.refresh_from_db()
            resumable = job.items.filter(
                status=RestoreItem.Status.PENDING,
                upload_session__isnull=False,
                bytes_done__gte=FRAGMENT,
            )
            return job.files_restored >= 2 and resumable.exists()

        wait_for(mid_upload, 120, "the worker restores a few files and is mid-way in another")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        job.refresh_from_db()
        assert job.status == RestoreJob.Status.RUNNING and job.files_restored < FILES
        in_flight = job.items.filter(status=RestoreItem.Status.PENDING).exclude(upload_session=None)
        resumed = {item.pk: item.bytes_done for item in in_flight}
        assert 1 <= len(resumed) <= THREADS
        tenant.sim.clear_faults()

        # Nobody asks again: the new worker's beat finds the silent restore and resumes it.
        worker = _start_worker(env)

        def finished():
            job.refresh_from_db()
            return not job.is_active

        wait_for(finished, 180, "the restore completes after its worker was lost")
    finally:
        _stop(worker)
        tenant.sim.clear_faults()

    assert job.status == RestoreJob.Status.SUCCEEDED, job.error
    assert job.attempts == 2 and job.files_restored == FILES
    landed = files_under(tenant, user, "/" + job.folder)
    assert set(landed) == {f"Films/{n:02}.bin" for n in range(FILES)}  # each once, no copies
    for version in FileVersion.objects.current().filter(
        drive__directory_user=user, is_folder=False
    ):
        assert_same_content(tenant, user, landed[version.path[1:]], version)
    stats = tenant.sim.stats()
    resent = stats["fragment_bytes_received"] - job.bytes_total
    assert 0 <= resent < FRAGMENT * len(resumed)  # less than one fragment per file in flight
    assert not RestoreItem.objects.filter(restore=job, upload_session__isnull=False).exists()
