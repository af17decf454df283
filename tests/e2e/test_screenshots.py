"""The main pages no other browser test reaches with data in them, as the README shows them
(`make screenshots` saves them; otherwise this checks that each opens): the login page, the
Dashboard of an organization whose users were backed up (also on a phone), a run's page, the
schedule wizard and the server administrator's Overview."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from backups.actions import do_run_inline, start_run
from backups.models import BackupRun
from tests.backups.restore_helpers import FAST
from tests.e2e.conftest import PHONE, log_in, screenshot
from tests.factories import PASSWORD, mirror_users, sim_configuration


@pytest.fixture
def backed_up(world, running_sim, settings, tmp_path):
    """Every user of configuration "Contoso" backed up once (the one without a OneDrive is
    skipped); the runs, in the simulator's order of users."""
    settings.KODO_STORE_URL = str(tmp_path / "store")
    configuration = sim_configuration(world.org_a, running_sim, name="Contoso")
    runs = []
    for user in mirror_users(configuration, running_sim.sim):
        run, _ = start_run(user, BackupRun.Trigger.COMMAND, enqueue=False)
        runs.append(do_run_inline(run, client_options=FAST, threads=2))
    assert sorted(run.status for run in runs) == ["skipped", "succeeded", "succeeded", "succeeded"]
    return runs


def test_the_main_pages_open_with_backups_in_them(
    new_page, world, backed_up, running_sim, microsoft_signin
):
    org = world.org_a
    microsoft_signin(running_sim)  # the login page as a portal with Sign in with Microsoft
    page = new_page()
    page.goto(reverse("login"))
    page.get_by_label("Email").fill("admin@alpha.example")
    expect(page.get_by_role("link", name="Sign in with Microsoft")).to_be_visible()
    screenshot(page, "login")

    log_in(page, "admin@alpha.example", PASSWORD)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    results = page.locator(".results")
    expect(results).to_contain_text("3 succeeded")
    expect(results).to_contain_text("1 skipped")
    screenshot(page, "dashboard")

    run = next(run for run in backed_up if run.status == BackupRun.Status.SUCCEEDED)
    page.goto(reverse("backups:backup-run", args=[org.code, run.code]))
    expect(page.get_by_role("heading", name=f"Backup of {run.directory_user}")).to_be_visible()
    expect(page.locator(".badge", has_text="Succeeded").first).to_be_visible()
    screenshot(page, "run")

    page.goto(reverse("schedules:schedule-new", args=[org.code]))
    page.get_by_label("Name").fill("Nightly OneDrive")
    step = page.locator('.steps [aria-current="step"]')
    for _ in range(3):  # Next through the steps before "When" (all users, the defaults)
        shown = step.inner_text().strip()
        if shown == "When":
            break
        page.get_by_role("button", name="Next").click()
        expect(step).not_to_have_text(shown)
    expect(step).to_have_text("When")
    screenshot(page, "schedule-wizard")

    phone = new_page()
    phone.set_viewport_size(PHONE)
    log_in(phone, "admin@alpha.example", PASSWORD)
    expect(phone.get_by_role("heading", name="Dashboard")).to_be_visible()
    screenshot(phone, "dashboard-phone")

    server = new_page()
    log_in(server, "root@kodo.example", PASSWORD)
    server.goto(reverse("backups:server-overview"))
    expect(server.get_by_role("heading", name="Overview")).to_be_visible()
    expect(server.get_by_role("row").filter(has_text=org.name)).to_be_visible()
    screenshot(server, "server-overview")
