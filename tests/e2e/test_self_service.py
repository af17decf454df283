"""Self-service, as a user of an organization with it on reads it: sign in with Microsoft from
the login page, land on My backups, restore a file they deleted to a new folder of their own
OneDrive, download a file, and find that another user's backups are not there (404)."""

import pytest
from playwright.sync_api import expect

from backups.actions import do_run_inline, do_run_restore, start_run
from backups.models import BackupRun, FileVersion, RestoreJob
from backups.storage import iter_version_content
from organizations.models import Membership
from tests.backups.restore_helpers import FAST, FRAGMENT, files_under
from tests.e2e.conftest import download, screenshot, sign_in_with_microsoft
from tests.e2e.test_restore_manual import _Tenant, restores_run_here  # noqa: F401 (a fixture)
from tests.factories import make_account, mirror_users, sim_configuration

PLAN = b"The plan I deleted by mistake.\n" * 500
REPORT = b"My report, still there.\n" * 300


@pytest.fixture
def own_onedrive(world, running_sim, microsoft_signin, settings, tmp_path):
    """Organization A with self-service on and the simulator's sign-in app; a user whose account
    is linked to their Microsoft 365 user, backed up before and after deleting /Plans/plan.txt;
    another user backed up."""
    settings.KODO_STORE_URL = str(tmp_path / "store")
    microsoft_signin(running_sim)
    org = world.org_a
    org.self_service_enabled = True
    org.users_may_browse = org.users_may_download = org.users_may_restore = True
    org.save()
    configuration = sim_configuration(org, running_sim, name="Contoso")
    users = mirror_users(configuration, running_sim.sim)
    me, colleague = users[1], users[2]
    me.account = make_account(me.email, org, role=Membership.Role.USER)
    me.save(update_fields=["account"])
    sim = running_sim.sim
    plan = sim.add_file(me.graph_id, "/Plans/plan.txt", content=PLAN)
    sim.add_file(me.graph_id, "/Reports/report.txt", content=REPORT)

    def back_up(user):
        run, _ = start_run(user, BackupRun.Trigger.COMMAND, enqueue=False)
        run = do_run_inline(run, client_options=FAST, threads=2)
        assert run.status == "succeeded", run.error

    back_up(me)
    sim.delete_item(me.graph_id, plan["id"])
    back_up(me)
    back_up(colleague)
    return sim, me, colleague


def test_a_user_restores_a_deleted_file_of_their_own_and_downloads_a_file(
    new_page,
    world,
    own_onedrive,
    restores_run_here,  # noqa: F811
):
    sim, me, colleague = own_onedrive
    page = new_page(ignore_https_errors=True)  # m365sim's certificate is from its own CA
    sign_in_with_microsoft(page, me.user_principal_name, sim.user_password)

    expect(page.get_by_role("heading", name="My backups")).to_be_visible()
    menu = page.get_by_role("navigation", name="Main menu")
    expect(menu.get_by_role("link", name="My backups")).to_be_visible()
    expect(menu.get_by_role("link", name="Dashboard")).to_have_count(0)
    screenshot(page, "my-backups")

    page.get_by_role("link", name="Deleted items").click()
    page.get_by_role("checkbox", name="Select plan.txt").check()
    page.get_by_role("button", name="RESTORE", exact=True).click()
    expect(page.get_by_role("heading", name="What will be restored")).to_be_visible()
    expect(page.get_by_text("Whose OneDrive")).to_have_count(0)
    page.get_by_role("button", name="RESTORE", exact=True).click()

    job = RestoreJob.objects.get()
    assert job.source_user == me and job.target_user == me and job.requested_by == me.account
    assert job.where == RestoreJob.Where.NEW_FOLDER
    do_run_restore(job.pk, job.organization_id, client_options=FAST, fragment_size=FRAGMENT)
    job.refresh_from_db()
    assert job.status == RestoreJob.Status.SUCCEEDED, job.error
    page.reload()
    expect(page.locator(".badge", has_text="Succeeded").first).to_be_visible()
    restored = files_under(_Tenant(sim), me, f"/{job.folder}")
    assert set(restored) == {"plan.txt"}  # a picked version lands in the folder itself
    assert sim.file_bytes(me.graph_id, restored["plan.txt"]["id"]) == PLAN

    page.get_by_role("link", name="My backups").first.click()
    expect(page.get_by_role("table").get_by_text("Succeeded")).to_be_visible()
    page.get_by_role("link", name="Browse").click()
    page.get_by_role("link", name="Reports").click()
    row = page.get_by_role("row").filter(has_text="report.txt")
    name, content = download(page, row.get_by_role("link", name="Download"))
    assert name == "report.txt"
    report = FileVersion.objects.get(path="/Reports/report.txt", drive__directory_user=me)
    assert content == b"".join(iter_version_content(report)) == REPORT

    configuration = colleague.configuration
    response = page.goto(
        f"/o/{world.org_a.code}/backups/{configuration.code}/users/{colleague.graph_id}/browse/"
    )
    assert response.status == 404
    expect(page.get_by_text("This page does not exist")).to_be_visible()
