"""Log-in lockouts behind a reverse proxy: keyed on the account and the client's real address."""

import pytest
from django.test import Client

from tests.factories import PASSWORD

PROXY = "10.0.0.1"
ATTACKER = "203.0.113.66"
REAL_USER = "198.51.100.7"


@pytest.fixture(autouse=True)
def behind_one_proxy(settings):
    settings.KODO_PROXY_COUNT = 1
    settings.AXES_FAILURE_LIMIT = 5


def _log_in(email, password, forwarded_for):
    """A log in through the proxy: it connects from PROXY and appends the client's address."""
    return Client().post(
        "/accounts/login/",
        {"username": email, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )


@pytest.mark.parametrize("email", ["admin@alpha.example", "root@kodo.example"])
def test_failures_from_one_address_do_not_lock_the_account_elsewhere(world, email):
    for _ in range(5):
        _log_in(email, "wrong", ATTACKER)
    assert _log_in(email, PASSWORD, ATTACKER).status_code == 429
    assert _log_in(email, PASSWORD, REAL_USER).status_code == 302


def test_forwarded_entries_the_client_wrote_are_not_trusted(world):
    email = "admin@alpha.example"
    for n in range(5):  # a different made-up address each time, then the proxy's true entry
        _log_in(email, "wrong", f"192.0.2.{n}, {ATTACKER}")
    # Claiming to be the real user does not give the attacker the user's key either.
    assert _log_in(email, PASSWORD, f"{REAL_USER}, {ATTACKER}").status_code == 429
    assert _log_in(email, PASSWORD, REAL_USER).status_code == 302


def test_the_audit_log_records_the_client_address(world):
    from organizations.models import AuditEvent

    _log_in("admin@alpha.example", "wrong", f"192.0.2.1, {ATTACKER}")
    assert AuditEvent.objects.get(action="login_failed").ip_address == ATTACKER
