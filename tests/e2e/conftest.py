"""Browser tests: Django's live server driven by Playwright on Debian's Chromium.

A failing test leaves a screenshot in var/test/e2e-screenshots/. With KODO_SCREENSHOTS_DIR set
(`make screenshots`), `screenshot(page, name)` calls save the README's pictures there."""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Every page opens at this size, so that the README's screenshots have one size.
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Kodo's server sign-in app (Sign in with Microsoft) as the browser tests register it in m365sim
SIGNIN_CLIENT_ID = "5e1e1e1e-0000-4000-8000-0000000b0b0b"
SIGNIN_SECRET = "kodo-e2e-signin-secret"

# Playwright's sync API runs an event loop in the test's thread; Django's ORM calls from the test
# itself are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it; never let browser tests vanish there
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, request, live_server):
    """Open pages in fresh browser contexts (one per person); screenshot them all on failure.
    Keyword arguments go to Playwright's new_context (ignore_https_errors=True for m365sim)."""
    contexts = []

    def open_page(**options):
        context = browser.new_context(base_url=live_server.url, viewport=DESKTOP, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        folder = Path(settings.VAR_DIR) / "e2e-screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        for number, context in enumerate(contexts):
            for page in context.pages:
                page.screenshot(
                    path=str(folder / f"{request.node.name}-{number}.png"), full_page=True
                )
    for context in contexts:
        context.close()


def log_in(page, email, password):
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def download(page, link) -> tuple[str, bytes]:
    """Click `link` (a locator) and wait for the download it starts: the file name the browser
    suggests and the bytes it saved."""
    with page.expect_download() as download_info:
        link.click()
    saved = download_info.value
    with open(saved.path(), "rb") as downloaded:
        return saved.suggested_filename, downloaded.read()


@pytest.fixture
def microsoft_signin(settings, live_server):
    """`microsoft_signin(running)`: Kodo's server sign-in app registered in a running m365sim,
    and the settings pointed at it, so that the login page shows Sign in with Microsoft."""

    def use(running):
        # A loopback reply URL matches the live server's port, whatever it is (as Entra's does).
        running.sim.register_signin_app(
            name="Kodo",
            client_id=SIGNIN_CLIENT_ID,
            client_secret=SIGNIN_SECRET,
            redirect_uris=["http://localhost/accounts/microsoft/callback/"],
        )
        settings.KODO_MICROSOFT_SIGNIN_CLIENT_ID = SIGNIN_CLIENT_ID
        settings.KODO_MICROSOFT_SIGNIN_CLIENT_SECRET = SIGNIN_SECRET
        settings.KODO_MICROSOFT_SIGNIN_AUTHORITY = running.authority_host
        settings.KODO_MICROSOFT_SIGNIN_CA_FILE = running.info["ca_file"]
        settings.KODO_BASE_URL = live_server.url
        return running

    return use


def sign_in_with_microsoft(page, login, password):
    """From Kodo's login page through m365sim's sign-in and consent pages, back to Kodo. The
    page's context must ignore HTTPS errors: m365sim's CA is its own."""
    page.goto("/accounts/login/")
    kodo = page.url.removesuffix("/accounts/login/")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email, phone, or Skype").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Permissions requested")).to_be_visible()
    page.get_by_role("button", name="Accept").click()
    page.wait_for_url(lambda url: url.startswith(f"{kodo}/"))


def screenshot(page, name, top=None):
    """Save what `page` shows now (its viewport) as KODO_SCREENSHOTS_DIR/<name>.png, for the
    README (`make screenshots`), scrolled first to put the locator `top` at the top if given.
    Nothing when the variable is unset: test runs never write into the tree."""
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name):
        raise ValueError(f"screenshot names are lowercase words joined by hyphens, not {name!r}")
    folder = os.environ.get("KODO_SCREENSHOTS_DIR")
    if not folder:
        return
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state()
    page.mouse.move(0, 0)  # no hover effect left from the last click
    if top is not None:
        top.evaluate("element => element.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(path), animations="disabled", caret="hide")
