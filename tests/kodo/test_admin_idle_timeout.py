"""Administrators' sessions end after KODO_ADMIN_IDLE_SECONDS without a request."""

import time

import pytest

from kodo.middleware import LAST_SEEN_KEY


@pytest.fixture(autouse=True)
def one_hour(settings):
    settings.KODO_ADMIN_IDLE_SECONDS = 3600


def _last_request_ago(client, seconds):
    session = client.session
    session[LAST_SEEN_KEY] = int(time.time()) - seconds
    session.save()


def _is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_an_idle_organization_admin_is_logged_out(admin_a_client, world):
    dashboard = f"/o/{world.org_a.code}/"
    assert admin_a_client.get(dashboard).status_code == 200
    _last_request_ago(admin_a_client, 3601)
    response = admin_a_client.get(dashboard, follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert b"logged out after a time without activity" in response.content
    assert not _is_logged_in(admin_a_client)


def test_an_idle_server_administrator_is_logged_out(server_admin_client):
    _last_request_ago(server_admin_client, 3601)
    response = server_admin_client.get("/server/organizations/")
    assert response.status_code == 302 and not _is_logged_in(server_admin_client)


def test_an_idle_restore_operator_is_logged_out(client, world):
    from organizations.models import Membership

    Membership.objects.filter(user=world.user_a, organization=world.org_a).update(
        role=Membership.Role.OPERATOR
    )
    client.force_login(world.user_a)
    _last_request_ago(client, 3601)
    client.get("/")
    assert not _is_logged_in(client)


def test_each_request_restarts_the_clock(admin_a_client, world):
    dashboard = f"/o/{world.org_a.code}/"
    for _ in range(3):  # 3 x 50 minutes, never an hour apart
        _last_request_ago(admin_a_client, 3000)
        assert admin_a_client.get(dashboard).status_code == 200
    assert _is_logged_in(admin_a_client)


def test_an_account_with_the_user_role_is_not_timed_out(client, world):
    client.force_login(world.user_a)
    _last_request_ago(client, 3601)
    client.get("/")
    assert _is_logged_in(client)


def test_the_clock_starts_at_log_in(client, world):
    from tests.factories import PASSWORD

    client.post("/accounts/login/", {"username": "admin@alpha.example", "password": PASSWORD})
    assert abs(client.session[LAST_SEEN_KEY] - time.time()) < 60
