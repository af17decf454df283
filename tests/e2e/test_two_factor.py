"""Two-factor sign-in in the browser: an admin sets up an authenticator app from the account page
(the test computes the app's codes), keeps the recovery codes, logs out, and logs in with the
password and a code; then with a recovery code."""

from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.factories import PASSWORD


def app_code(device, steps_ahead=0):
    """What the authenticator app shows (steps_ahead: the next 30-second period's code, since a
    code once used is refused)."""
    shift = steps_ahead * device.step
    return f"{totp(device.bin_key, device.step, device.t0 - shift, device.digits):06d}"


def test_an_admin_sets_up_two_factor_and_logs_in_with_a_code(new_page, world):
    page = new_page()
    log_in(page, "admin@alpha.example", PASSWORD)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Account")).to_be_visible()
    expect(page.get_by_text("Administrator of Alpha University")).to_be_visible()
    page.get_by_role("link", name="SET UP").click()

    qr = page.get_by_role("img", name="QR code to add Kodo to an authenticator app")
    expect(qr).to_be_visible()
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    device = TOTPDevice.objects.get(user=world.admin_a, confirmed=False)
    shown_key = page.locator("code.secret").inner_text().replace(" ", "")
    assert shown_key and shown_key in device.config_url  # the key a person would type

    page.get_by_label("Code from the app").fill("000000")
    page.get_by_role("button", name="TURN ON").click()
    expect(page.get_by_text("This code is not right")).to_be_visible()
    page.get_by_label("Code from the app").fill(app_code(device))
    page.get_by_role("button", name="TURN ON").click()

    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.locator("ul.recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    assert set(codes) == set(
        StaticToken.objects.filter(device__user=world.admin_a).values_list("token", flat=True)
    )
    page.get_by_role("link", name="I have saved them").click()
    expect(page.get_by_text("Recovery codes left: 10 of 10")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    log_in(page, "admin@alpha.example", PASSWORD)
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    page.goto("/account/")  # nothing is reachable before the code
    expect(page.get_by_role("button", name="Log in")).to_be_visible()

    log_in(page, "admin@alpha.example", PASSWORD)
    device.refresh_from_db()
    page.get_by_label("Code").fill(app_code(device, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    log_in(page, "admin@alpha.example", PASSWORD)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.goto("/account/")
    expect(page.get_by_text("Recovery codes left: 9 of 10")).to_be_visible()
