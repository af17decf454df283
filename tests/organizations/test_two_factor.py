"""Two-factor sign-in: setting an authenticator app up, the code step after the password,
recovery codes, the requirement for administrators, Microsoft sessions, lockout and audit."""

import logging
import time

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from organizations import two_factor
from organizations.models import AuditEvent, Membership
from tests.factories import PASSWORD, make_account


def code_for(device, steps_ahead=0):
    """The code the app shows now (or `steps_ahead` periods of 30 s later)."""
    shift = steps_ahead * device.step
    return f"{totp(device.bin_key, device.step, device.t0 - shift, device.digits):06d}"


def with_app(user, recovery_codes=("abcd2345", "efgh6789")):
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    static = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    for code in recovery_codes:
        StaticToken.objects.create(device=static, token=code)
    return device


def log_in(client, email, password=PASSWORD, next_url=None):
    form = {"username": email, "password": password}
    if next_url is not None:
        form["next"] = next_url
    return client.post("/accounts/login/", form)


def at_code_step(email="admin@alpha.example", next_url=None):
    """A new browser that gave the account's password and now stands at the code step."""
    client = Client()
    log_in(client, email, next_url=next_url)
    return client


def signed_in(client):
    return "_auth_user_id" in client.session


def actions():
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


@pytest.fixture
def no_device_throttle(settings):
    """django-otp's own growing delay after a wrong code; tests of axes' limit go without it."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


# ----- setting up from the account page ------------------------------------------------------


def test_the_account_page_shows_email_role_and_two_factor_state(admin_a_client, world):
    page = admin_a_client.get("/account/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "admin@alpha.example" in text
    assert "Administrator of Alpha University" in text
    assert "Change password" in text
    assert "/account/two-factor/set-up/" in text


def test_setting_up_shows_a_qr_code_and_the_key_and_needs_a_code(
    admin_a_client, world, caplog, no_device_throttle
):
    caplog.set_level(logging.DEBUG)
    page = admin_a_client.get("/account/two-factor/set-up/")
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=world.admin_a)
    assert not device.confirmed
    text = page.content.decode()
    assert 'src="data:image/svg+xml' in text
    assert two_factor.secret_text(device) in text

    wrong = admin_a_client.post("/account/two-factor/set-up/", {"code": "000000"})
    assert wrong.status_code == 200 and "This code is not right" in wrong.content.decode()
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed

    done = admin_a_client.post("/account/two-factor/set-up/", {"code": code_for(device)})
    assert done.status_code == 302 and done["Location"] == "/account/two-factor/recovery-codes/"
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    codes = list(StaticToken.objects.filter(device__user=world.admin_a))
    assert len(codes) == 10

    shown = admin_a_client.get("/account/two-factor/recovery-codes/").content.decode()
    assert all(code.token in shown for code in codes)
    # Shown once.
    assert admin_a_client.get("/account/two-factor/recovery-codes/").status_code == 302
    assert {"two_factor_enabled", "recovery_codes_created"} <= set(actions())
    logged = caplog.text + "".join(AuditEvent.objects.values_list("message", flat=True))
    assert device.key not in logged and two_factor.secret_text(device) not in logged
    assert not any(code.token in logged for code in codes)


def test_a_new_app_replaces_the_old_one(admin_a_client, world):
    old = with_app(world.admin_a)
    admin_a_client.get("/account/two-factor/set-up/?again=1")
    new = TOTPDevice.objects.get(user=world.admin_a, confirmed=False)
    admin_a_client.post("/account/two-factor/set-up/", {"code": code_for(new)})
    assert list(TOTPDevice.objects.filter(user=world.admin_a)) == [new]
    assert not TOTPDevice.objects.filter(pk=old.pk).exists()


def test_new_recovery_codes_replace_the_old_ones(admin_a_client, world):
    with_app(world.admin_a, recovery_codes=["oldcode1"])
    response = admin_a_client.post("/account/two-factor/recovery-codes/new/")
    assert response.status_code == 302
    tokens = set(
        StaticToken.objects.filter(device__user=world.admin_a).values_list("token", flat=True)
    )
    assert len(tokens) == 10 and "oldcode1" not in tokens
    assert "recovery_codes_created" in actions()


# ----- the code step after the password -----------------------------------------------------


def test_a_password_alone_does_not_sign_in_an_account_with_an_app(world):
    device = with_app(world.admin_a)
    client = Client()
    response = log_in(client, "admin@alpha.example")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/code/"
    assert not signed_in(client)
    # Nothing else is reachable: organization pages, the account page, the admin.
    for url in (f"/o/{world.org_a.code}/", "/account/", "/admin/"):
        page = client.get(url)
        assert page.status_code == 302 and "/login/" in page["Location"], url
    assert "login" not in actions()

    page = client.get("/accounts/login/code/")
    assert page.status_code == 200
    done = client.post("/accounts/login/code/", {"code": code_for(device)})
    assert done.status_code == 302 and done["Location"] == "/"
    assert signed_in(client)
    assert client.session["otp_device_id"] == device.persistent_id
    assert client.get("/account/").status_code == 200
    assert "login" in actions()


def test_the_code_step_keeps_where_the_person_was_going(world):
    device = with_app(world.admin_a)
    client = at_code_step(next_url="/account/")
    done = client.post("/accounts/login/code/", {"code": code_for(device)})
    assert done["Location"] == "/account/"


def test_a_wrong_code_is_refused_and_audited(world, no_device_throttle):
    with_app(world.admin_a)
    client = at_code_step()
    page = client.post("/accounts/login/code/", {"code": "123456"})
    assert page.status_code == 200 and "This code is not right" in page.content.decode()
    assert not signed_in(client)
    event = AuditEvent.objects.get(action="two_factor_code_refused")
    assert event.actor == world.admin_a and event.organization == world.org_a


def test_a_recovery_code_works_once(world):
    with_app(world.admin_a, recovery_codes=["k7m2p4q9", "zz22yy33"])
    client = at_code_step()
    done = client.post("/accounts/login/code/", {"code": "K7M2 P4Q9"})  # as typed from paper
    assert done.status_code == 302 and signed_in(client)
    assert "recovery_code_used" in actions()
    assert "1 left" in AuditEvent.objects.get(action="recovery_code_used").message

    client.post("/accounts/logout/")
    client = at_code_step()
    again = client.post("/accounts/login/code/", {"code": "k7m2p4q9"})
    assert again.status_code == 200 and not signed_in(client)


def test_the_code_step_without_a_password_first_goes_back_to_log_in(client, world):
    with_app(world.admin_a)
    response = client.post("/accounts/login/code/", {"code": "123456"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"


def test_an_old_pending_sign_in_expires(world):
    device = with_app(world.admin_a)
    client = at_code_step()
    session = client.session
    session[two_factor.PENDING_KEY]["since"] = int(time.time()) - two_factor.PENDING_SECONDS - 1
    session.save()
    response = client.post("/accounts/login/code/", {"code": code_for(device)})
    assert response["Location"] == "/accounts/login/" and not signed_in(client)


def test_a_password_change_ends_a_pending_sign_in(world):
    device = with_app(world.admin_a)
    client = at_code_step()
    world.admin_a.set_password("another-long-password-42")
    world.admin_a.save()
    response = client.post("/accounts/login/code/", {"code": code_for(device)})
    assert response["Location"] == "/accounts/login/" and not signed_in(client)


# ----- lockout ------------------------------------------------------------------------------


def test_wrong_codes_lock_the_account_like_wrong_passwords(world, settings, no_device_throttle):
    settings.AXES_FAILURE_LIMIT = 3
    device = with_app(world.admin_a)
    client = at_code_step()
    assert client.post("/accounts/login/code/", {"code": "111111"}).status_code == 200
    assert client.post("/accounts/login/code/", {"code": "222222"}).status_code == 200
    locked = client.post("/accounts/login/code/", {"code": "333333"})
    assert locked.status_code == 429 and "Too many failed log ins" in locked.content.decode()
    assert "two_factor_locked_out" in actions()
    # The pending sign-in is gone, and the password step is locked too, right code or not.
    assert client.post("/accounts/login/code/", {"code": code_for(device)}).status_code == 302
    assert log_in(Client(), "admin@alpha.example").status_code == 429
    assert not signed_in(client)


def test_wrong_passwords_and_wrong_codes_count_together(world, settings, no_device_throttle):
    settings.AXES_FAILURE_LIMIT = 3
    device = with_app(world.admin_a)
    log_in(Client(), "admin@alpha.example", password="wrong")
    log_in(Client(), "admin@alpha.example", password="wrong")
    client = Client()
    assert log_in(client, "admin@alpha.example").status_code == 302
    assert client.post("/accounts/login/code/", {"code": "999999"}).status_code == 429
    assert client.post("/accounts/login/code/", {"code": code_for(device)}).status_code == 302
    assert not signed_in(client)


def test_a_locked_account_cannot_use_a_right_code(world, settings, no_device_throttle):
    settings.AXES_FAILURE_LIMIT = 2
    device = with_app(world.admin_a)
    client = at_code_step()
    client.post("/accounts/login/code/", {"code": "111111"})
    # Locked by failures from the same address in another browser meanwhile.
    log_in(Client(), "admin@alpha.example", password="wrong")
    response = client.post("/accounts/login/code/", {"code": code_for(device)})
    assert response.status_code == 429 and not signed_in(client)


def test_django_otp_delay_after_a_wrong_code_is_explained(world, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60  # seconds after one wrong code: longer than the test
    device = with_app(world.admin_a)
    client = at_code_step()
    client.post("/accounts/login/code/", {"code": "111111"})
    page = client.post("/accounts/login/code/", {"code": code_for(device)})
    assert page.status_code == 200 and "wait a few seconds" in page.content.decode()
    assert not signed_in(client)


# ----- required for administrators ----------------------------------------------------------


@pytest.fixture
def required(settings):
    settings.KODO_REQUIRE_TWO_FACTOR_FOR_ADMINS = True


@pytest.mark.parametrize("who", ["admin", "operator", "server_admin"])
def test_an_administrator_without_an_app_must_set_one_up(world, required, who):
    email = {
        "admin": "admin@alpha.example",
        "server_admin": "root@kodo.example",
        "operator": "operator@alpha.example",
    }[who]
    if who == "operator":
        make_account(email, world.org_a, role=Membership.Role.OPERATOR)
    client = Client()
    response = log_in(client, email)
    assert response["Location"] == "/accounts/login/set-up/"
    assert not signed_in(client)
    for url in ("/", f"/o/{world.org_a.code}/", "/account/", "/server/organizations/"):
        assert "/accounts/login/" in client.get(url)["Location"], url

    page = client.get("/accounts/login/set-up/")
    assert page.status_code == 200 and "data:image/svg+xml" in page.content.decode()
    device = TOTPDevice.objects.get(user__username=email, confirmed=False)
    assert client.post("/accounts/login/set-up/", {"code": "000000"}).status_code == 200
    assert not signed_in(client)
    done = client.post("/accounts/login/set-up/", {"code": code_for(device)})
    assert done["Location"] == "/account/two-factor/recovery-codes/"
    assert signed_in(client)
    codes = client.get("/account/two-factor/recovery-codes/")
    assert codes.status_code == 200 and 'href="/"' in codes.content.decode()


def test_a_user_is_not_required_to_set_one_up(world, required):
    client = Client()
    assert log_in(client, "user@alpha.example")["Location"] == "/"
    assert signed_in(client)


def test_a_required_app_cannot_be_turned_off(world, required):
    device = with_app(world.admin_a)
    client = at_code_step()
    client.post("/accounts/login/code/", {"code": code_for(device)})
    response = client.post("/account/two-factor/turn-off/", {"password": PASSWORD})
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=world.admin_a).exists()


def test_a_log_in_that_skipped_the_code_step_is_sent_to_it(world, required):
    """force_login stands for any log in made outside the code step."""
    client = Client()
    client.force_login(world.admin_a)
    response = client.get(f"/o/{world.org_a.code}/audit/")
    assert response["Location"] == "/accounts/login/set-up/"
    assert not signed_in(client)


@pytest.mark.parametrize("change", ["made_operator", "requirement_turned_on"])
def test_an_open_session_that_now_needs_the_second_factor_is_sent_to_it(world, settings, change):
    """Signed in with the password alone while no second factor was needed; then the account
    became a restore operator (or the server began to require it): the open session is no way
    around the requirement."""
    settings.KODO_REQUIRE_TWO_FACTOR_FOR_ADMINS = change == "made_operator"
    client = Client()
    email = "user@alpha.example" if change == "made_operator" else "admin@alpha.example"
    assert log_in(client, email)["Location"] == "/"
    assert signed_in(client)
    if change == "made_operator":
        Membership.objects.filter(user=world.user_a).update(role=Membership.Role.OPERATOR)
    else:
        settings.KODO_REQUIRE_TWO_FACTOR_FOR_ADMINS = True
    response = client.get(f"/o/{world.org_a.code}/backups/")
    assert response["Location"] == "/accounts/login/set-up/"
    assert not signed_in(client)


# ----- Microsoft sessions -------------------------------------------------------------------


def _microsoft_session(client, user):
    client.force_login(user)
    session = client.session
    session["kodo_signed_in_with"] = "microsoft"
    session.save()


def test_a_microsoft_session_is_never_asked_for_a_code(world, required):
    with_app(world.user_a)
    client = Client()
    _microsoft_session(client, world.admin_a)  # required, no app
    assert client.get(f"/o/{world.org_a.code}/audit/").status_code == 200
    other = Client()
    _microsoft_session(other, world.user_a)  # has an app
    assert other.get("/account/").status_code == 200


def test_the_same_account_logged_in_otherwise_is_asked_for_its_code(world):
    with_app(world.user_a)
    client = Client()
    client.force_login(world.user_a)
    response = client.get("/account/")
    assert response["Location"] == "/accounts/login/code/"
    assert not signed_in(client)


# ----- turning off --------------------------------------------------------------------------


def test_turning_off_needs_a_current_code_or_the_password(admin_a_client, world):
    device = with_app(world.admin_a)
    refused = admin_a_client.post("/account/two-factor/turn-off/", {"password": "wrong"})
    assert refused.status_code == 400
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert admin_a_client.post("/account/two-factor/turn-off/", {}).status_code == 400

    done = admin_a_client.post("/account/two-factor/turn-off/", {"code": code_for(device)})
    assert done.status_code == 302
    assert not TOTPDevice.objects.filter(user=world.admin_a).exists()
    assert not StaticDevice.objects.filter(user=world.admin_a).exists()
    assert "two_factor_disabled" in actions()


def test_wrong_proofs_at_turning_off_count_toward_the_lockout(
    admin_a_client, world, settings, no_device_throttle
):
    """The turn-off form checks the password and codes: guesses there are limited as at log in."""
    device = with_app(world.admin_a)
    for attempt in range(1, settings.AXES_FAILURE_LIMIT + 1):
        refused = admin_a_client.post("/account/two-factor/turn-off/", {"password": "wrong"})
        assert refused.status_code == (429 if attempt == settings.AXES_FAILURE_LIMIT else 400)
    locked = admin_a_client.post("/account/two-factor/turn-off/", {"password": PASSWORD})
    assert locked.status_code == 429
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert "two_factor_disabled" not in actions()


def test_turning_off_with_the_password(admin_a_client, world):
    with_app(world.admin_a)
    admin_a_client.post("/account/two-factor/turn-off/", {"password": PASSWORD})
    assert not TOTPDevice.objects.filter(user=world.admin_a).exists()


# ----- the Django admin ---------------------------------------------------------------------


def test_the_admin_log_in_is_kodo_log_in(world):
    with_app(world.server_admin)
    client = Client()
    response = client.get("/admin/login/?next=/admin/")
    assert response["Location"] == "/accounts/login/?next=/admin/"
    posted = client.post("/admin/login/", {"username": "root@kodo.example", "password": PASSWORD})
    assert posted.status_code == 302 and not signed_in(client)
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


def test_the_admin_needs_the_code_step(world):
    device = with_app(world.server_admin)
    client = at_code_step("root@kodo.example", next_url="/admin/")
    assert client.get("/admin/").status_code == 302
    done = client.post("/accounts/login/code/", {"code": code_for(device)})
    assert done["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
