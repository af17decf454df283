from django.test import override_settings

from tests.factories import PASSWORD


def test_pages_carry_a_self_only_content_security_policy(client, world):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert response["X-Frame-Options"] == "DENY"


def test_pages_load_no_third_party_assets(admin_a_client, world):
    page = admin_a_client.get(f"/o/{world.org_a.code}/").content.decode()
    assert "http://" not in page.replace("http://testserver", "")
    assert "https://" not in page


def test_hsts_is_sent_over_https(client, world):
    response = client.get("/accounts/login/", secure=True)
    assert "max-age=31536000" in response["Strict-Transport-Security"]


@override_settings(AXES_FAILURE_LIMIT=3)
def test_repeated_failed_log_ins_lock_the_account(client, world):
    for _ in range(3):
        client.post("/accounts/login/", {"username": "admin@alpha.example", "password": "no"})
    response = client.post(
        "/accounts/login/", {"username": "admin@alpha.example", "password": PASSWORD}
    )
    assert response.status_code == 429
    assert b"Too many failed log ins" in response.content


def test_csrf_is_enforced(world):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        "/accounts/login/", {"username": "admin@alpha.example", "password": PASSWORD}
    )
    assert response.status_code == 403


def test_404_page_is_styled(admin_a_client):
    response = admin_a_client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"This page does not exist" in response.content and b"kodo.css" in response.content


def test_500_page_is_styled():
    from kodo.views import server_error

    response = server_error(None)
    assert response.status_code == 500 and b"Something went wrong" in response.content


def test_static_assets_are_served(client):
    assert client.get("/static/css/kodo.css").status_code == 200
