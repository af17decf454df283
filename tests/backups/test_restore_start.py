"""Starting a restore: what is checked before (a write permission, the target's OneDrive, a
selection, a user of the organization), what the job and the audit log say, and Cancel."""

import datetime as dt
import zoneinfo

import pytest

from backups.actions import do_cancel_restore
from backups.models import RestoreJob
from backups.restore import RestoreRefused
from kodo.jobs import recover_jobs
from o365.graph import forget_tokens
from organizations.models import AuditEvent
from tests.backups.restore_helpers import FRAGMENT, files_under, run, start
from tests.factories import make_users, mirror_one


@pytest.fixture
def backed_up(tenant):
    tenant.backup(tenant.users[1])
    return tenant.users[1]


@pytest.fixture
def read_only_app(tenant):
    """The tenant's app without a write permission (Kodo's cached tokens forgotten around)."""
    app = tenant.running.info["tenants"][0]["apps"][0]
    tenant.sim.set_app_roles(app["client_id"], ["User.Read.All", "Files.Read.All"])
    forget_tokens()
    yield
    forget_tokens()


def refused(tenant, **options) -> str:
    with pytest.raises(RestoreRefused) as refusal:
        start(tenant, **options)
    assert not RestoreJob.objects.exists()
    return str(refusal.value)


def test_without_a_write_permission_it_says_which_and_how_to_grant_it(
    tenant, backed_up, read_only_app
):
    message = refused(tenant)
    assert "lacks Files.ReadWrite.All" in message and "Grant admin consent" in message
    assert "TEST CONNECTION" in message


def test_a_target_without_onedrive_is_named(tenant, backed_up):
    nobody = tenant.users[-1]
    message = refused(tenant, target_user=nobody)
    assert f"{nobody} ({nobody.email}) has no OneDrive" in message


def test_a_target_of_another_organization_is_refused(tenant, backed_up, world):
    outsider = make_users(world.org_b, 1)[0]
    assert "is not a user of Alpha University" in refused(tenant, target_user=outsider)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"what": "selection"}, "Nothing is selected"),
        ({"what": "selection", "paths": ["/No such folder"]}, "holds nothing to restore"),
        ({"where": "folder", "folder": "Restored/a:b"}, "character OneDrive refuses"),
        ({"where": "folder", "folder": "Restored/ trailing"}, "begins or ends with a space"),
        ({"where": "folder", "folder": "Restored/dot."}, "ends with a dot"),
        ({"conflict": "merge"}, "Not a restore option"),
    ],
)
def test_bad_selections_and_options_are_refused_with_a_reason(tenant, backed_up, options, said):
    assert said in refused(tenant, **options)


def test_the_job_and_the_audit_say_who_what_as_of_when_and_where(tenant, backed_up, world):
    other = tenant.users[2]
    job = start(
        tenant,
        what="selection",
        paths=["/Documents/", "/Documents"],
        target_user=other,
        where="folder",
        folder=" Restored//March/ ",
        conflict="rename",
        actor_email="ops@alpha.example",
    )

    assert job.status == RestoreJob.Status.QUEUED and job.paths == ["/Documents"]
    assert job.folder == "/Restored/March" and job.as_of_run.directory_user == backed_up
    assert job.target_drive_id and job.requested_by_email == "ops@alpha.example"
    event = AuditEvent.objects.get(action="restore_started")
    assert event.organization == world.org_a and event.actor_email == "ops@alpha.example"
    assert "/Documents of " in event.message and "as of 20" in event.message
    assert f'the folder "/Restored/March" in {other}' in event.message
    assert "keep both (rename)" in event.message


def test_two_restores_in_the_same_minute_get_folders_of_their_own(tenant, backed_up, monkeypatch):
    monkeypatch.setattr(
        "backups.actions.new_folder_name", lambda organization: "Kodo Restore 2026-12-03 07-10"
    )
    folders = [start(tenant).folder for _ in range(3)]
    assert folders == [
        "Kodo Restore 2026-12-03 07-10",
        "Kodo Restore 2026-12-03 07-10 (2)",
        "Kodo Restore 2026-12-03 07-10 (3)",
    ]


def test_the_new_folder_is_named_in_the_organizations_time_zone(tenant, backed_up):
    job = start(tenant)
    local = dt.datetime.now(zoneinfo.ZoneInfo("Europe/Warsaw"))
    assert job.folder.startswith(f"Kodo Restore {local:%Y-%m-%d %H}")


def test_cancel_a_queued_restore(tenant, backed_up, mailoutbox, django_capture_on_commit_callbacks):
    job = start(tenant)
    with django_capture_on_commit_callbacks(execute=True):
        assert do_cancel_restore(job, actor_email="ops@alpha.example")
    job.refresh_from_db()
    assert (
        job.status == RestoreJob.Status.CANCELED and job.error == "Canceled by ops@alpha.example."
    )
    assert AuditEvent.objects.filter(action="restore_canceled").exists()
    assert len(mailoutbox) == 1 and "was canceled" in mailoutbox[0].subject
    assert run(job).outcome == "done"  # a late task leaves it alone
    assert not do_cancel_restore(job)


def test_cancel_while_it_runs_stops_the_uploads_and_deletes_their_sessions(tenant):
    user = mirror_one(tenant, "cancel")
    for n in range(8):
        tenant.sim.add_file(user.graph_id, f"/Big/{n}.bin", size=3 * FRAGMENT)
    tenant.backup(user)
    # every fragment pauses mid-way: files are in flight when the cancel comes
    tenant.sim.set_fault("fragment", "stall", after_bytes=1000, stall_seconds=0.1)
    job = start(tenant, user)

    def cancel_after_the_first_file(progress):
        if progress.files_done >= 1 and progress.status == RestoreJob.Status.RUNNING:
            do_cancel_restore(RestoreJob.objects.get(pk=progress.pk), actor_email="ops")

    job = run(job, threads=2, progress=cancel_after_the_first_file)

    assert job.status == RestoreJob.Status.CANCELED
    assert 1 <= job.files_restored < 8
    assert not tenant.running.upload_sessions  # the sessions in flight were deleted
    # a file whose last fragment was on its way when the cancel came may have landed too
    landed = files_under(tenant, user, "/" + job.folder)
    assert job.files_restored <= len(landed) <= job.files_restored + 2


def test_recovery_sends_a_restore_whose_worker_went_silent(tenant, backed_up, monkeypatch):
    from backups.tasks import run_restore

    sent = []
    monkeypatch.setattr(run_restore, "apply_async", lambda args, **kw: sent.append(args))
    job = start(tenant)
    RestoreJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=None, attempts=1)

    report = recover_jobs()

    assert sent == [(job.pk, job.organization_id)] and report.resumed == 1


def test_the_tasks_page_lists_restores(tenant, backed_up, admin_a_client, world):
    job = start(tenant)
    page = admin_a_client.get(f"/o/{world.org_a.code}/tasks/?type=restore")
    assert page.status_code == 200
    assert [task.obj for task in page.context["tasks"]] == [job]
    html = page.content.decode()
    assert "Restore" in html and str(backed_up) in html


def test_a_write_permission_withdrawn_after_the_start_fails_the_restore_with_the_reason(
    tenant, backed_up, read_only_app
):
    app = tenant.running.info["tenants"][0]["apps"][0]
    granted = ["User.Read.All", "Files.ReadWrite.All", "Files.Read.All"]
    tenant.sim.set_app_roles(app["client_id"], granted)
    forget_tokens()
    job = start(tenant)
    tenant.sim.set_app_roles(app["client_id"], ["User.Read.All", "Files.Read.All"])
    forget_tokens()

    job = run(job)

    assert job.status == RestoreJob.Status.FAILED
    assert "refused to let Kodo write to the OneDrive" in job.error
    assert job.files_restored == 0 and not tenant.running.upload_sessions


def test_a_target_whose_onedrive_is_gone_when_it_runs_fails_with_the_reason(
    tenant, backed_up, monkeypatch
):
    monkeypatch.setattr("backups.actions.check_target", lambda user: "b!gone")
    nobody = tenant.users[-1]
    job = run(start(tenant, target_user=nobody))

    assert job.status == RestoreJob.Status.FAILED
    assert job.error.startswith(f"{nobody} ({nobody.email}) has no OneDrive")
