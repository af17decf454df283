"""The manual, end to end: Services -> gear -> Configuration -> + ADD CONFIGURATION ->
KodoADSettings.json -> SAVE -> TEST CONNECTION; then Users: IMPORT USERS / SYNCHRONIZE USERS."""

import json
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import log_in, screenshot
from tests.factories import PASSWORD, sim_cloud


def add_configuration(page, org, settings_file):
    page.goto(f"/o/{org.code}/")
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Services").click()
    page.get_by_role("link", name="Configure Office 365").click()
    tabs = page.get_by_role("navigation", name="Office 365")
    tabs.get_by_role("link", name="Configuration").click()
    page.get_by_role("link", name="+ ADD CONFIGURATION").click()
    page.get_by_label("KodoADSettings.json").set_input_files(str(settings_file))
    page.get_by_role("button", name="SAVE").click()


def kodo_settings(m365sim, tmp_path, app_index, organization=None):
    """The simulator's KodoADSettings.json; its `Cloud` is "Custom", i.e. the cloud the form
    preselects: the simulator's, registered as the organization's default (as `make run` does)."""
    if organization is not None:
        sim_cloud(m365sim, organization, default=True)
    path = tmp_path / f"KodoADSettings-{app_index}.json"
    path.write_text(json.dumps(m365sim.kodo_settings(0, app_index)))
    return path


@pytest.fixture
def admin_page(new_page, world):
    page = new_page()
    log_in(page, "admin@alpha.example", PASSWORD)
    return page


def test_test_connection_succeeds_with_the_demo_settings(admin_page, world, m365sim, tmp_path):
    add_configuration(admin_page, world.org_a, kodo_settings(m365sim, tmp_path, 0, world.org_a))
    expect(admin_page.get_by_text("Now TEST CONNECTION.")).to_be_visible()
    admin_page.get_by_role("button", name="TEST CONNECTION").click()
    expect(admin_page.get_by_text("Connection OK", exact=False).first).to_be_visible()


def test_test_connection_names_the_missing_permission(admin_page, world, m365sim, tmp_path):
    add_configuration(admin_page, world.org_a, kodo_settings(m365sim, tmp_path, 1, world.org_a))
    admin_page.get_by_role("button", name="TEST CONNECTION").click()
    expect(admin_page.get_by_role("status").filter(has_text="Files.Read.All")).to_be_visible()


def test_import_then_synchronize_users(admin_page, world, tmp_path):
    from m365sim import Simulator

    sim = Simulator.demo()
    with sim.serve(state_dir=tmp_path / "sim") as running:
        sim_cloud(running, world.org_a, default=True)
        settings_file = tmp_path / "demo.json"
        settings_file.write_text(json.dumps(running.kodo_settings()))
        add_configuration(admin_page, world.org_a, settings_file)

        tabs = admin_page.get_by_role("navigation", name="Office 365")
        tabs.get_by_role("link", name="Users").click()
        run_jobs_inline(admin_page, "IMPORT USERS")
        first = sim.list_users()[0]
        cell = admin_page.get_by_role("cell", name=first["displayName"], exact=True)
        expect(cell).to_be_visible()
        screenshot(admin_page, "services-users", top=admin_page.locator("#directory-job"))

        linked = [u for u in sim.list_users() if u["accountEnabled"] and u["licensed"]]
        renamed, deleted = linked[0], linked[1]
        sim.rename_user(renamed["id"], display_name="Renamed Person")
        sim.delete_user(deleted["id"])
        run_jobs_inline(admin_page, "SYNCHRONIZE USERS")
        expect(admin_page.get_by_role("cell", name="Renamed Person", exact=True)).to_be_visible()
        row = admin_page.get_by_role("row").filter(has_text=deleted["displayName"])
        expect(row.get_by_text("Removed")).to_be_visible()

        # 'Select "Schedules" tab and click "+ ADD SCHEDULE" follow instruction from wizard to
        # create new backup scheduler. Click "SAVE" button.'
        tabs.get_by_role("link", name="Schedules").click()
        admin_page.get_by_role("link", name="+ ADD SCHEDULE").click()
        admin_page.get_by_label("Name", exact=True).fill("Every night")
        admin_page.get_by_role("button", name="Next").click()  # all users
        expect(admin_page.get_by_text("Next runs (Europe/Warsaw)")).to_be_visible()
        admin_page.get_by_role("button", name="Next").click()  # daily at 22:00
        admin_page.get_by_role("button", name="Next").click()  # retention, notifications
        expect(admin_page.get_by_text("Step 4: Review")).to_be_visible()
        admin_page.get_by_role("button", name="SAVE").click()
        expect(admin_page.get_by_text("Saved schedule Every night")).to_be_visible()


def run_jobs_inline(page, button):
    """Click the button, then run the queued job here (the worker's code path) and reload."""
    from o365.actions import do_run_directory_job
    from o365.models import DirectoryJob

    page.get_by_role("button", name=button).click()
    expect(page.get_by_text("started.")).to_be_visible()
    for job in DirectoryJob.objects.filter(status="queued"):
        do_run_directory_job(job.pk)  # does nothing if a worker claimed it first
    deadline = time.monotonic() + 60
    while DirectoryJob.objects.active().exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    page.reload()
    expect(page.get_by_text("Succeeded").first).to_be_visible()
