"""Cancel a backup from the Tasks page: a queued run never starts, a running one stops at its
next claim check without recording more and without moving the drive's cursor."""

from unittest import mock

import pytest
from django.urls import reverse

from backups.actions import claim_run, do_cancel_run, execute_run, start_run
from backups.engine import close_run
from backups.models import BackupRun, DriveState, FileVersion
from backups.tasks import run_backup
from organizations.models import AuditEvent
from tests.factories import make_finished_run, make_users


def _cancel_url(run):
    return reverse("backups:backup-run-cancel", args=[run.organization.code, run.code])


def test_a_queued_run_is_canceled_and_a_new_backup_can_start(
    admin_a_client, world, django_capture_on_commit_callbacks
):
    user = make_users(world.org_a, 1)[0]
    run, _ = start_run(user, enqueue=False)

    response = admin_a_client.post(_cancel_url(run), follow=True)

    assert response.redirect_chain[-1][0] == f"/o/{world.org_a.code}/tasks/"
    assert b"was canceled" in response.content
    run.refresh_from_db()
    assert run.status == BackupRun.Status.CANCELED
    assert run.finished_at is not None and run.error == "Canceled by admin@alpha.example."
    assert run.active_user is None and run.claim_token is None
    event = AuditEvent.objects.get(action="backup_canceled")
    assert event.organization == world.org_a and user.email in event.message
    assert event.actor == world.admin_a

    # Its task, delivered later, finds nothing to do.
    assert run_backup.run(run.pk, run.organization_id) == "done"
    run.refresh_from_db()
    assert run.status == BackupRun.Status.CANCELED and run.started_at is None

    with django_capture_on_commit_callbacks():
        admin_a_client.post(
            reverse(
                "backups:start-user-backup",
                args=[world.org_a.code, user.configuration.code, user.graph_id],
            )
        )
    new = BackupRun.objects.exclude(pk=run.pk).get()
    assert new.status == BackupRun.Status.QUEUED and new.active_user == user


def test_cancel_goes_back_to_a_local_next_page_only(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    run, _ = start_run(user, enqueue=False)
    tasks = f"/o/{world.org_a.code}/tasks/?status=running"
    assert admin_a_client.post(_cancel_url(run), {"next": tasks})["Location"] == tasks

    run2, _ = start_run(user, enqueue=False)
    response = admin_a_client.post(_cancel_url(run2), {"next": "https://evil.example/"})
    assert response["Location"] == f"/o/{world.org_a.code}/tasks/"


def test_a_finished_run_stays_as_it_was(admin_a_client, world):
    run = make_finished_run(make_users(world.org_a, 1)[0])

    response = admin_a_client.post(_cancel_url(run), follow=True)

    assert b"had already finished" in response.content
    run.refresh_from_db()
    assert run.status == BackupRun.Status.SUCCEEDED and run.error == ""
    assert not AuditEvent.objects.filter(action="backup_canceled").exists()


def test_cancel_needs_post(admin_a_client, world):
    run, _ = start_run(make_users(world.org_a, 1)[0], enqueue=False)
    assert admin_a_client.get(_cancel_url(run)).status_code == 405
    run.refresh_from_db()
    assert run.status == BackupRun.Status.QUEUED


def test_outsider_cannot_cancel(admin_b_client, world):
    run, _ = start_run(make_users(world.org_a, 1)[0], enqueue=False)
    assert admin_b_client.post(_cancel_url(run)).status_code == 404
    run.refresh_from_db()
    assert run.status == BackupRun.Status.QUEUED


def test_a_worker_cannot_close_a_canceled_run(world):
    run, _ = start_run(make_users(world.org_a, 1)[0], enqueue=False)
    claim = claim_run(run.pk, run.organization_id)
    assert do_cancel_run(claim.run, actor_email="ops@alpha.example")

    assert close_run(claim.run, BackupRun.Status.SUCCEEDED) is False
    run.refresh_from_db()
    assert run.status == BackupRun.Status.CANCELED and run.error == "Canceled by ops@alpha.example."


@pytest.mark.parametrize("via_task", [False, True])
def test_a_running_backup_stops_at_its_next_claim_check(tenant, admin_a_client, via_task):
    user = tenant.users[1]
    files = tenant.sim_files(user)
    run, _ = start_run(user, enqueue=False)
    seen_at_cancel = []

    def cancel_after_two(progress):
        if progress.files_downloaded >= 2 and not seen_at_cancel:
            seen_at_cancel.append(progress.files_downloaded)
            assert admin_a_client.post(_cancel_url(run)).status_code == 302

    def execute(claimed):
        return execute_run(
            claimed, threads=1, progress=cancel_after_two, client_options={"backoff_base": 0.01}
        )

    if via_task:
        # The task as a worker runs it, with the test's progress hook.
        with mock.patch("backups.tasks.execute_run", execute):
            assert run_backup.run(run.pk, run.organization_id) == BackupRun.Status.CANCELED
    else:
        claim = claim_run(run.pk, run.organization_id)
        assert execute(claim.run).status == BackupRun.Status.CANCELED

    run.refresh_from_db()
    assert run.status == BackupRun.Status.CANCELED and run.active_user is None
    assert run.error == "Canceled by admin@alpha.example." and run.phase == ""
    # Nothing was recorded after the cancel, and the drive's cursor did not move.
    assert run.files_downloaded == seen_at_cancel[0] < len(files)
    recorded = FileVersion.objects.filter(first_run=run, is_folder=False).count()
    assert recorded == run.files_downloaded
    state = DriveState.objects.get(directory_user=user)
    assert state.delta_link == "" and state.last_run is None

    # The next backup starts at once and finishes the job.
    after = tenant.backup(user)
    assert after.status == BackupRun.Status.SUCCEEDED
    assert FileVersion.objects.current().filter(drive=state, is_folder=False).count() == len(files)
    run.refresh_from_db()
    assert run.status == BackupRun.Status.CANCELED
