"""Pages update themselves while a job runs (kodo/live.py, htmx): no reload, no click.

The jobs are run by the test itself (the worker's code path), never by a worker another test
started on the broker: sending is switched off, so only this test can claim them."""

import re
from unittest import mock

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from backups.actions import do_run_inline
from backups.models import BackupRun
from o365.actions import do_run_directory_job
from o365.models import DirectoryJob
from tests.backups.restore_helpers import FAST
from tests.e2e.conftest import log_in
from tests.factories import PASSWORD, make_users, mirror_users, sim_configuration

LIVE_TIMEOUT = 20_000  # ms: a poll every 2 s, and the job's own time


@pytest.fixture
def jobs_run_here():
    with (
        mock.patch.object(BackupRun, "send_many", return_value=0),
        mock.patch.object(DirectoryJob, "send_many", return_value=0),
    ):
        yield


def _watch_errors(page) -> list:
    """The page's console errors (a CSP violation, an htmx swap without its target)."""
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    return errors


def _mark_the_document(page):
    """A mark that only a reload would lose."""
    page.evaluate("document.documentElement.dataset.notReloaded = 'yes'")


def _assert_not_reloaded(page):
    assert page.evaluate("document.documentElement.dataset.notReloaded") == "yes"


def _running_run(organization) -> BackupRun:
    """A backup run of a new user of `organization`, running: its page polls."""
    user = make_users(organization, 1)[0]
    return BackupRun.objects.create(
        organization=organization,
        configuration=user.configuration,
        directory_user=user,
        active_user=user,
        status=BackupRun.Status.RUNNING,
    )


def test_import_users_fills_the_users_tab_without_a_reload(
    new_page, world, running_sim, jobs_run_here
):
    configuration = sim_configuration(world.org_a, running_sim, name="Contoso")
    page = new_page()
    errors = _watch_errors(page)
    log_in(page, "admin@alpha.example", PASSWORD)
    page.goto(reverse("o365:configuration-users", args=[world.org_a.code]))
    expect(page.get_by_text("No users read yet")).to_be_visible()
    expect(page.get_by_text("Not read from Microsoft 365 yet")).to_be_visible()

    page.get_by_role("button", name="IMPORT USERS").click()
    started = page.get_by_role("status").filter(has_text="Import users started.")
    expect(started).to_be_visible()
    _mark_the_document(page)

    job = DirectoryJob.objects.get(configuration=configuration)
    do_run_directory_job(job.pk)
    job.refresh_from_db()
    assert job.status == DirectoryJob.Status.SUCCEEDED, job.error

    first = running_sim.sim.list_users()[0]
    cell = page.get_by_role("cell", name=first["displayName"], exact=True)
    expect(cell).to_be_visible(timeout=LIVE_TIMEOUT)
    expect(page.get_by_text("No users read yet")).to_have_count(0)
    expect(page.get_by_text("Last read from Microsoft 365")).to_be_visible()
    expect(page.locator(".progress-panel").get_by_text("Succeeded")).to_be_visible()
    expect(started).to_have_count(0)  # the job's message left with it
    _assert_not_reloaded(page)
    assert errors == []


def test_a_queued_backup_turns_succeeded_on_the_backups_page_without_a_reload(
    new_page, world, running_sim, jobs_run_here, settings, tmp_path
):
    settings.KODO_STORE_URL = str(tmp_path / "store")
    configuration = sim_configuration(world.org_a, running_sim, name="Contoso")
    user = mirror_users(configuration, running_sim.sim)[0]
    page = new_page()
    errors = _watch_errors(page)
    log_in(page, "admin@alpha.example", PASSWORD)
    page.goto(reverse("backups:backups", args=[world.org_a.code]))

    users = page.locator(".card").filter(has=page.get_by_role("heading", name="Users", exact=True))
    row = users.get_by_role("row").filter(has_text=user.display_name)
    expect(row.get_by_text("Never")).to_be_visible()
    row.get_by_role("button", name="Backup now").click()
    started = page.get_by_role("status").filter(has_text=f"Backing up {user}.")
    expect(started).to_be_visible()
    expect(row.get_by_text("Queued")).to_be_visible()
    _mark_the_document(page)

    run = BackupRun.objects.get(directory_user=user)
    finished = do_run_inline(run, client_options=FAST, threads=2)
    assert finished.status == BackupRun.Status.SUCCEEDED, finished.error

    expect(row.get_by_text("Succeeded")).to_be_visible(timeout=LIVE_TIMEOUT)
    expect(row.get_by_text("protected")).to_be_visible()
    recent = page.locator(".card").filter(has=page.get_by_role("heading", name="Recent runs"))
    expect(recent.get_by_role("row").filter(has_text=user.display_name)).to_contain_text(
        "Succeeded"
    )
    expect(started).to_have_count(0)
    _assert_not_reloaded(page)
    assert errors == []


def test_a_poll_after_the_session_ended_takes_the_window_to_the_login_page(
    new_page, world, jobs_run_here
):
    run = _running_run(world.org_a)
    page = new_page()
    errors = _watch_errors(page)
    log_in(page, "admin@alpha.example", PASSWORD)
    url = reverse("backups:backup-run", args=[world.org_a.code, run.code])
    page.goto(url)
    expect(page.locator("#run-live")).to_have_attribute("hx-trigger", "every 2s")

    page.context.clear_cookies()  # the session ends

    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="), timeout=LIVE_TIMEOUT)
    expect(page.get_by_role("button", name="Log in")).to_have_count(1)  # the page, not nested
    assert errors == []


def test_a_poll_answered_404_stops_polling(new_page, world):
    run = _running_run(world.org_a)
    page = new_page()
    log_in(page, "admin@alpha.example", PASSWORD)
    page.goto(reverse("backups:backup-run", args=[world.org_a.code, run.code]))
    live = page.locator("#run-live")
    expect(live).to_have_attribute("hx-trigger", "every 2s")

    run.delete()  # the next poll is answered 404

    expect(live).not_to_have_attribute("hx-trigger", "every 2s", timeout=LIVE_TIMEOUT)
    expect(live.get_by_text("Running")).to_be_visible()  # what was shown stays
