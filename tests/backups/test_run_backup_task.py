"""The run_backup task: redelivery continues the claimed run; a real worker runs a backup."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from backups.actions import start_run
from backups.engine import QUEUED_PER_THREAD
from backups.models import BackupRun, FileVersion
from backups.tasks import run_backup
from tests.factories import mirror_users, sim_configuration


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the engine catches it."""


def test_a_redelivered_task_continues_the_run_without_downloading_again(tenant):
    user = tenant.users[1]
    files = tenant.sim_files(user)
    run, _ = start_run(user, enqueue=False)
    recorded = []

    def die_after_three(run):
        if run.files_downloaded >= 3:
            recorded.append(run.files_downloaded)
            raise Killed

    from backups.actions import claim_run, execute_run

    claim = claim_run(run.pk, run.organization_id)
    with pytest.raises(Killed):
        execute_run(
            claim.run, threads=1, progress=die_after_three, client_options={"backoff_base": 0.01}
        )
    run.refresh_from_db()
    # Killed after the group commit that reached 3 files (it may have recorded a few at once).
    assert run.status == BackupRun.Status.RUNNING and run.files_downloaded == recorded[0] >= 3
    stored_before = set(
        FileVersion.objects.filter(is_folder=False).values_list("item_id", flat=True)
    )
    # The worker is gone: its heartbeat gets old, and the broker delivers the task again.
    BackupRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))

    assert run_backup.run(run.pk, run.organization_id) == BackupRun.Status.SUCCEEDED

    run.refresh_from_db()
    assert BackupRun.objects.count() == 1 and run.attempts == 2
    assert run.files_downloaded == len(files)
    downloads = tenant.sim.stats()["downloads_by_item"]
    assert len(downloads) == len(files)
    assert all(downloads[item_id] == 1 for item_id in stored_before)
    # At most the downloads queued when the worker died (one window per thread) are made again.
    assert sum(downloads.values()) - len(files) <= QUEUED_PER_THREAD
    assert FileVersion.objects.current().filter(is_folder=False).count() == len(files)
    # A third delivery of the finished run does nothing.
    assert run_backup.run(run.pk, run.organization_id) == "done"


def test_a_task_for_another_organization_does_nothing(tenant, world):
    run, _ = start_run(tenant.users[1], enqueue=False)
    assert run_backup.run(run.pk, world.org_b.pk) == "missing"


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_backs_up_a_user(
    world, running_sim, celery_worker, django_capture_on_commit_callbacks
):
    configuration = sim_configuration(world.org_a, running_sim, name="Contoso")
    user = mirror_users(configuration, running_sim.sim)[1]
    expected = [i for i in running_sim.sim.list_items(user.graph_id) if not i["folder"]]

    with django_capture_on_commit_callbacks(execute=True):
        run, _ = start_run(user)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not run.is_active:
            break
        time.sleep(0.2)
    assert run.status == BackupRun.Status.SUCCEEDED, (run.status, run.error)
    assert run.files_downloaded == len(expected)
    assert FileVersion.objects.filter(drive__directory_user=user, is_folder=False).count() == len(
        expected
    )
