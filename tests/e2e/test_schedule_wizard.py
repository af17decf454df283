"""+ ADD SCHEDULE through the wizard, Run now, the run completes, the dashboard shows it."""

import time

from playwright.sync_api import expect

from backups.actions import do_run_inline
from backups.models import BackupRun
from tests.e2e.conftest import log_in
from tests.factories import PASSWORD, mirror_users, sim_configuration


def run_queued_backups(deadline_seconds=60):
    """Run what Run now queued, here (the worker's code path); wait for any a worker took."""
    for run in BackupRun.objects.filter(status="queued"):
        do_run_inline(run, client_options={"backoff_base": 0.01})
    deadline = time.monotonic() + deadline_seconds
    while BackupRun.objects.active().exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def test_add_schedule_run_now_and_see_it_on_the_dashboard(new_page, world, running_sim):
    configuration = sim_configuration(world.org_a, running_sim, name="Contoso")
    users = mirror_users(configuration, running_sim.sim)
    chosen = users[1]

    page = new_page()
    log_in(page, "admin@alpha.example", PASSWORD)
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Services").click()
    page.get_by_role("link", name="Configure Office 365").click()
    page.get_by_role("navigation", name="Office 365").get_by_role("link", name="Schedules").click()
    page.get_by_role("link", name="+ ADD SCHEDULE").click()

    page.get_by_label("Name").fill("Nightly OneDrive")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("radio", name="Chosen users").check()
    page.get_by_role("listbox", name="Chosen users").select_option(str(chosen.pk))
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Weekly on chosen days").check()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Choose at least one day of the week.")).to_be_visible()
    page.get_by_label("Tuesday").check()
    page.get_by_label("Friday").check()
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Versions to keep per file").fill("12")
    page.get_by_role("button", name="SAVE").click()

    expect(page.get_by_text("Saved schedule Nightly OneDrive")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Nightly OneDrive")
    expect(row.get_by_text("Weekly on Tue, Fri")).to_be_visible()
    expect(row.get_by_text("Never")).to_be_visible()

    row.get_by_role("button", name="Run now").click()
    expect(page.get_by_text("Started Nightly OneDrive: 1 user backup.")).to_be_visible()
    run_queued_backups()
    run = BackupRun.objects.get()
    assert run.directory_user == chosen and run.status == "succeeded", run.error

    page.reload()
    expect(
        page.get_by_role("row").filter(has_text="Nightly OneDrive").get_by_text("Succeeded")
    ).to_be_visible()
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Dashboard").click()
    expect(
        page.get_by_text(chosen.display_name).or_(page.get_by_text("1 succeeded")).first
    ).to_be_visible()
