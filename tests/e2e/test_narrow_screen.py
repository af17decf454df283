"""A phone (390 x 844): on every main page the menu starts folded behind "Menu" and opens with
it, the page's heading is on the first screen, and nothing pushes the page sideways (wide tables
scroll inside their card)."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from backups.actions import do_run_inline, start_run
from backups.models import BackupRun
from tests.backups.restore_helpers import FAST
from tests.e2e.conftest import log_in
from tests.factories import PASSWORD, mirror_users, sim_configuration

PHONE = {"width": 390, "height": 844}
# Names long enough that a table holding them is wider than a phone.
LONG_FOLDER = "Quarterly reports for the board of directors and the supervisory council"
LONG_FILE = "Consolidated financial statement with all subsidiaries and notes, final version.xlsx"


@pytest.fixture
def backed_up_user(world, running_sim, settings, tmp_path):
    """A user of configuration "Contoso" backed up once, with long folder and file names."""
    settings.KODO_STORE_URL = str(tmp_path / "store")
    configuration = sim_configuration(world.org_a, running_sim, name="Contoso")
    user = mirror_users(configuration, running_sim.sim)[1]
    running_sim.sim.add_file(user.graph_id, f"/{LONG_FOLDER}/{LONG_FILE}", content=b"figures\n")
    run, _ = start_run(user, BackupRun.Trigger.COMMAND, enqueue=False)
    assert do_run_inline(run, client_options=FAST, threads=2).status == "succeeded"
    return user


def main_pages(org, user):
    """The main pages a phone user opens: (name, URL)."""
    user_kwargs = {
        "org_code": org.code,
        "configuration_code": user.configuration.code,
        "user_graph_id": user.graph_id,
    }
    return [
        ("Dashboard", reverse("backups:dashboard", args=[org.code])),
        ("Services", reverse("o365:services", args=[org.code])),
        ("Users", reverse("o365:organization-users", args=[org.code])),
        ("Backups", reverse("backups:backups", args=[org.code])),
        ("browse", reverse("backups:browse", kwargs=user_kwargs)),
        ("Tasks", reverse("backups:tasks", args=[org.code])),
        ("Schedules", reverse("schedules:schedules", args=[org.code])),
    ]


def assert_fits_a_phone(page, name):
    """No sideways page, the menu folded (it opens and closes with "Menu"), the heading on the
    first screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: the page is {width} px wide"

    heading = page.locator("main h1").first
    expect(heading).to_be_visible()
    box = heading.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], f"{name}: {box}"

    menu = page.get_by_role("navigation", name="Main menu")
    button = menu.get_by_role("button", name="Menu")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(menu.get_by_role("link", name="Schedules")).to_be_hidden()
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(menu.get_by_role("link", name="Schedules")).to_be_visible()
    expect(menu.get_by_role("button", name="Log out")).to_be_visible()
    button.click()
    expect(menu.get_by_role("link", name="Schedules")).to_be_hidden()


def test_main_pages_and_the_restore_form_fit_a_phone(new_page, world, backed_up_user):
    page = new_page()
    page.set_viewport_size(PHONE)
    log_in(page, "admin@alpha.example", PASSWORD)

    for name, url in main_pages(world.org_a, backed_up_user):
        page.goto(url)
        assert_fits_a_phone(page, name)

    # The browse page's table is wider than the phone: it scrolls inside its card.
    page.goto(main_pages(world.org_a, backed_up_user)[4][1])
    table = page.locator("table.browse-table")
    expect(table).to_contain_text(LONG_FOLDER)
    card_scrolls = table.evaluate(
        "t => { const card = t.closest('.card'); return card.scrollWidth > card.clientWidth; }"
    )
    assert card_scrolls, "the long names should make the table scroll inside its card"

    # The restore form (reached by ticking a folder and pressing RESTORE).
    page.get_by_role("checkbox", name=f"Select {LONG_FOLDER}").check()
    page.get_by_role("button", name="RESTORE", exact=True).click()
    expect(page.get_by_role("heading", name="What will be restored")).to_be_visible()
    assert_fits_a_phone(page, "restore form")
    restore = page.get_by_role("button", name="RESTORE", exact=True)
    restore.scroll_into_view_if_needed()
    box = restore.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_without_javascript_the_menu_stays_open(browser, live_server, world):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_viewport_size(PHONE)
        log_in(page, "admin@alpha.example", PASSWORD)
        page.goto(reverse("backups:dashboard", args=[world.org_a.code]))
        menu = page.get_by_role("navigation", name="Main menu")
        expect(menu.get_by_role("link", name="Schedules")).to_be_visible()
        expect(menu.get_by_role("button", name="Menu")).to_be_hidden()
    finally:
        context.close()
