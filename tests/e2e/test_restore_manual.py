"""Getting data back, as an administrator reads it in the README: open a user, pick yesterday's
restore point, tick a folder, RESTORE to a new folder, see it succeed; download a file."""

import datetime as dt
import re
from unittest import mock

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backups.actions import do_run_inline, do_run_restore, start_run
from backups.models import BackupRun, FileVersion, RestoreJob
from backups.storage import iter_version_content
from tests.backups.restore_helpers import FAST, FRAGMENT, assert_same_content, files_under
from tests.e2e.conftest import download, log_in, screenshot
from tests.factories import PASSWORD, mirror_users, sim_configuration

REPORT = b"The report as it was yesterday.\n" * 2000
EDITED = b"Today's edit replaced the report.\n" * 1500


@pytest.fixture
def history(world, running_sim, settings, tmp_path):
    """A user backed up yesterday (Reports/q3.txt as it was then) and today (after an edit)."""
    settings.KODO_STORE_URL = str(tmp_path / "store")
    configuration = sim_configuration(world.org_a, running_sim, name="Contoso")
    user = mirror_users(configuration, running_sim.sim)[1]
    sim = running_sim.sim
    report = sim.add_file(user.graph_id, "/Reports/q3.txt", content=REPORT)
    sim.add_file(user.graph_id, "/Reports/notes.txt", content=b"notes\n")

    def back_up():
        run, _ = start_run(user, BackupRun.Trigger.COMMAND, enqueue=False)
        return do_run_inline(run, client_options=FAST, threads=2)

    yesterday = back_up()
    assert yesterday.status == "succeeded", yesterday.error
    when = timezone.now() - dt.timedelta(days=1)
    BackupRun.objects.filter(pk=yesterday.pk).update(finished_at=when, started_at=when)
    sim.modify_file(user.graph_id, report["id"], content=EDITED)
    assert back_up().status == "succeeded"
    return sim, user


@pytest.fixture
def restores_run_here():
    """Restores are run by the test (the worker's code path, with this test's store), never by a
    worker another test started on the broker."""
    with mock.patch.object(RestoreJob, "send_many", return_value=0):
        yield


def test_restore_yesterdays_folder_to_a_new_folder_then_download_a_file(
    new_page, world, history, restores_run_here
):
    sim, user = history
    page = new_page()
    log_in(page, "admin@alpha.example", PASSWORD)

    page.goto(f"/o/{world.org_a.code}/")
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Backups").click()
    screenshot(page, "backups")
    page.get_by_role("row").filter(has_text=user.mail or user.user_principal_name).get_by_role(
        "link", name="Browse"
    ).click()
    points = page.get_by_role("list", name="Restore points, newest first").get_by_role("link")
    expect(points).to_have_count(2)
    yesterday = BackupRun.objects.order_by("pk").first()
    points.nth(1).click()  # newest first: yesterday's is the second
    expect(page).to_have_url(re.compile(f"at={yesterday.code}"))

    page.get_by_role("checkbox", name="Select Reports").check()
    screenshot(page, "browse")
    page.get_by_role("button", name="RESTORE", exact=True).click()
    expect(page.get_by_role("heading", name="What will be restored")).to_be_visible()
    screenshot(page, "restore-form")
    page.get_by_role("button", name="RESTORE", exact=True).click()

    job = RestoreJob.objects.get()
    assert job.as_of_run == yesterday
    assert job.where == RestoreJob.Where.NEW_FOLDER and job.folder.startswith("Kodo Restore ")
    do_run_restore(job.pk, job.organization_id, client_options=FAST, fragment_size=FRAGMENT)
    job.refresh_from_db()
    assert job.status == RestoreJob.Status.SUCCEEDED, job.error
    page.reload()
    expect(page.locator(".badge", has_text="Succeeded").first).to_be_visible()
    screenshot(page, "restore-finished")

    restored = files_under(_Tenant(sim), user, f"/{job.folder}")
    assert set(restored) == {"Reports/q3.txt", "Reports/notes.txt"}
    yesterdays = FileVersion.objects.get(path="/Reports/q3.txt", end_run__isnull=False)
    assert_same_content(_Tenant(sim), user, restored["Reports/q3.txt"], yesterdays)
    assert sim.file_bytes(user.graph_id, restored["Reports/q3.txt"]["id"]) == REPORT

    page.go_back()
    page.go_back()
    page.get_by_role("link", name="Reports").click()
    row = page.get_by_role("row").filter(has_text="q3.txt")
    name, content = download(page, row.get_by_role("link", name="Download"))
    assert name == "q3.txt"
    assert content == b"".join(iter_version_content(yesterdays)) == REPORT


class _Tenant:
    """What tests.backups.restore_helpers reads of a tenant: its simulator."""

    def __init__(self, sim):
        self.sim = sim
