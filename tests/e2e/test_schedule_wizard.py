"""+ ADD SCHEDULE through the wizard, Run now, the run completes, the dashboard shows it."""

import re
import time

from playwright.sync_api import expect

from backups.actions import do_run_inline
from backups.models import BackupRun
from schedules.models import Schedule
from tests.e2e.conftest import log_in
from tests.factories import PASSWORD, make_configuration, mirror, mirror_users, sim_configuration


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

    # Step 1: what to back up. The users picker searches on the server as one types.
    page.get_by_label("Name", exact=True).fill("Nightly OneDrive")
    picker = page.get_by_role("group", name="Chosen users")
    expect(picker).to_be_hidden()  # only for "Chosen users"
    page.get_by_role("radio", name="Chosen users").check()
    expect(picker).to_be_visible()
    found = page.get_by_role("list", name="Users found")
    expect(found.get_by_role("checkbox")).to_have_count(len(users))
    page.get_by_role("searchbox", name="Search users").fill(chosen.email[:5].upper())
    expect(found.get_by_role("checkbox")).to_have_count(1)
    found.get_by_role("checkbox", name=chosen.display_name).check()
    picked = page.get_by_role("list", name="Chosen users")
    expect(picked.get_by_role("checkbox", name=chosen.display_name)).to_be_checked()
    page.get_by_role("searchbox", name="Search users").fill("nobody-by-this-name")
    expect(page.get_by_text("No user's name, email or user principal name")).to_be_visible()
    expect(picked.get_by_role("checkbox")).to_have_count(1)  # still chosen
    page.get_by_role("button", name="Next").click()

    # Step 2: when. Days only for weekly; next runs follow the fields, in the schedule's zone.
    expect(page.get_by_text("Step 2: When")).to_be_visible()
    next_runs = page.locator("#next-runs")
    expect(next_runs).to_contain_text("Next runs (Europe/Warsaw)")
    expect(page.get_by_label("Tuesday")).to_be_hidden()
    page.get_by_label("Weekly on chosen days").check()
    expect(page.get_by_label("Tuesday")).to_be_visible()
    expect(page.get_by_role("spinbutton", name="Every N hours")).to_be_hidden()
    expect(next_runs).to_contain_text("Check On days")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Choose at least one day of the week.")).to_be_visible()
    page.get_by_label("Tuesday").check()
    page.get_by_label("Friday").check()
    expect(next_runs.get_by_role("listitem")).to_have_count(5)
    expect(next_runs.get_by_role("listitem").first).to_contain_text("22:00")
    zone = page.get_by_label("Time zone")
    zone.fill("tokyo")  # not a zone's name: the server offers the zones that hold it
    expect(next_runs).to_contain_text("Check Time zone")
    next_runs.get_by_role("button", name="Asia/Tokyo").click()
    expect(zone).to_have_value("Asia/Tokyo")
    expect(next_runs).to_contain_text("Next runs (Asia/Tokyo)")
    page.get_by_label("At", exact=True).fill("06:30")
    expect(next_runs.get_by_role("listitem").first).to_contain_text("06:30")
    for day in next_runs.get_by_role("listitem").all_inner_texts():
        assert day[:3] in ("Tue", "Fri"), day
    page.get_by_role("button", name="Next").click()

    # Step 3: what to keep; step 4: review, then SAVE.
    page.get_by_label("Versions to keep per file").fill("12")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Step 4: Review")).to_be_visible()
    expect(page.get_by_text("Weekly on Tue, Fri at 06:30 Asia/Tokyo")).to_be_visible()
    expect(page.get_by_text("1 chosen user")).to_be_visible()
    page.get_by_role("button", name="SAVE").click()

    expect(page.get_by_text("Saved schedule Nightly OneDrive")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Nightly OneDrive")
    expect(row.get_by_text("Weekly on Tue, Fri")).to_be_visible()
    expect(row.get_by_text("Never")).to_be_visible()
    # The next run, in the schedule's zone ("." for "/", which Playwright's selector refuses).
    next_run = re.compile(r"^\d{4}-\d\d-\d\d 06:30 Asia.Tokyo$")
    expect(row.get_by_role("cell", name=next_run)).to_be_visible()

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


def test_the_wizard_works_without_javascript(browser, live_server, world):
    configuration = make_configuration(world.org_a)
    users = mirror(configuration, 30)
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        log_in(page, "admin@alpha.example", PASSWORD)
        page.goto(f"/o/{world.org_a.code}/schedules/new/")
        page.get_by_label("Name", exact=True).fill("A few")
        page.get_by_role("radio", name="Chosen users").check()
        page.get_by_role("searchbox", name="Search users").fill("u 27")
        page.get_by_role("button", name="Search", exact=True).click()  # reloads the step
        found = page.get_by_role("list", name="Users found")
        expect(found.get_by_role("checkbox")).to_have_count(1)
        found.get_by_role("checkbox", name="U 27").check()
        page.get_by_role("button", name="Next").click()

        expect(page.get_by_text("Step 2: When")).to_be_visible()
        page.get_by_label("Time zone").fill("America/New_York")
        page.get_by_role("button", name="Preview runs").click()  # reloads the step
        expect(page.get_by_text("Next runs (America/New_York)")).to_be_visible()
        page.get_by_role("button", name="Next").click()
        page.get_by_role("button", name="Next").click()
        expect(page.get_by_text("1 chosen user")).to_be_visible()
        page.get_by_role("button", name="SAVE").click()
        expect(page.get_by_text("Saved schedule A few")).to_be_visible()
    finally:
        context.close()
    schedule = Schedule.objects.get()
    assert list(schedule.users.all()) == [users[27]]
    assert schedule.time_zone == "America/New_York"


def test_more_users_and_another_configuration(new_page, world):
    first = make_configuration(world.org_a, name="First")
    mirror(first, 30)
    second = make_configuration(world.org_a, name="Second")
    mirror(second, 2, prefix="second")
    page = new_page()
    log_in(page, "admin@alpha.example", PASSWORD)
    page.goto(f"/o/{world.org_a.code}/schedules/new/")
    page.get_by_label("Configuration").select_option(label="First")
    page.get_by_role("radio", name="Chosen users").check()
    found = page.get_by_role("list", name="Users found")
    expect(found.get_by_role("checkbox")).to_have_count(25)
    found.get_by_role("checkbox", name="U 0 ").check()
    page.get_by_role("button", name="More users").click()
    expect(page.get_by_text("Page 2")).to_be_visible()
    expect(found.get_by_role("checkbox")).to_have_count(5)
    page.get_by_role("button", name="Previous users").click()
    expect(found.get_by_role("checkbox", name="U 0 ")).to_be_checked()  # still chosen
    page.get_by_label("Configuration").select_option(label="Second")
    expect(found.get_by_role("checkbox")).to_have_count(2)
    expect(found).to_contain_text("SECOND 1")
