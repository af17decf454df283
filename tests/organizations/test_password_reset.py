"""Password-reset emails are limited per client address and per account, and the page answers
the same whatever happened (nobody learns which emails have an account)."""

import datetime as dt

import pytest
from django.test import Client

from organizations.models import AuditEvent

PROXY = "10.0.0.1"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.KODO_PROXY_COUNT = 1
    settings.KODO_RESET_EMAILS_PER_ADDRESS = 5
    settings.KODO_RESET_EMAILS_PER_ACCOUNT = 3


def _ask(email, address):
    return Client().post(
        "/accounts/password_reset/",
        {"email": email},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=address,
    )


def _answer(response):
    return response.status_code, response["Location"]


def test_it_sends_the_link(world, mailoutbox):
    assert _answer(_ask("Admin@Alpha.example", "198.51.100.1")) == (
        302,
        "/accounts/password_reset/done/",
    )
    assert [m.to for m in mailoutbox] == [["admin@alpha.example"]]
    assert "/accounts/reset/" in mailoutbox[0].body


def test_an_account_gets_at_most_three_links_an_hour(world, mailoutbox):
    answers = {_answer(_ask("admin@alpha.example", f"198.51.100.{n}")) for n in range(6)}
    assert len(mailoutbox) == 3
    assert answers == {(302, "/accounts/password_reset/done/")}


def test_an_address_gets_at_most_five_requests_an_hour(world, mailoutbox):
    for n in range(5):
        _ask(f"nobody{n}@alpha.example", "203.0.113.9")
    limited = _ask("user@alpha.example", "203.0.113.9")
    assert mailoutbox == []
    assert _answer(limited) == _answer(_ask("nobody@alpha.example", "198.51.100.1"))
    _ask("user@alpha.example", "198.51.100.2")  # the account itself is not limited elsewhere
    assert [m.to for m in mailoutbox] == [["user@alpha.example"]]


def test_the_limits_last_an_hour(world, mailoutbox):
    for n in range(3):
        _ask("admin@alpha.example", f"198.51.100.{n}")
    AuditEvent.objects.filter(action="password_reset_requested").update(
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=61)
    )
    _ask("admin@alpha.example", "198.51.100.9")
    assert len(mailoutbox) == 4
