"""Sign-in with OpenID Connect against m365sim: /authorize, the sign-in and consent pages, the
code exchange with PKCE, id tokens, and Entra's errors."""

import base64
import hashlib
import json
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests

from m365sim import Simulator

REPLY_URL = "https://portal.example/accounts/microsoft/callback/"
CLIENT_ID = "6e1e1e1e-0000-4000-8000-000000000001"


@pytest.fixture
def sim():
    sim = Simulator.generate(seed=5, users=4, files_per_user=1, domain="contoso.example")
    sim.add_tenant(seed=6, users=3, files_per_user=1, domain="fabrikam.example")
    sim.register_signin_app(
        name="Kodo",
        client_id=CLIENT_ID,
        client_secret="kodo-signin-secret",
        redirect_uris=[REPLY_URL, "http://127.0.0.1/accounts/microsoft/callback/"],
    )
    return sim


@pytest.fixture
def http(running):
    session = requests.Session()
    session.trust_env = False
    session.verify = running.info["ca_file"]
    return session


def pkce():
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(running, ref="organizations", **params):
    values = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REPLY_URL,
        "scope": "openid profile offline_access",
        "state": "the-state",
        "nonce": "the-nonce",
    }
    values.update(params)
    values = {k: v for k, v in values.items() if v is not None}
    return f"{running.authority_host}/{ref}/oauth2/v2.0/authorize?{urlencode(values)}"


def rid_of(page):
    return re.search(r"name='rid' value='([^']+)'", page).group(1)


def log_in(http, running, page, user, password=None, ref="organizations", **kwargs):
    """Post the sign-in form of `page` (the response that showed it) as `user`."""
    return http.post(
        f"{running.authority_host}/{ref}/login",
        data={
            "rid": rid_of(page.text),
            "login": user.upn,
            "passwd": password or running.sim.user_password,
        },
        **kwargs,
    )


def decide(http, running, page, accept, ref="organizations"):
    """Accept or cancel the consent `page` (the response that showed it); not followed."""
    return http.post(
        f"{running.authority_host}/{ref}/consent",
        data={"rid": rid_of(page.text), "decision": "accept" if accept else "cancel"},
        allow_redirects=False,
    )


def sign_in(http, running, user, password=None, ref="organizations", accept=True, **params):
    """Drive the pages as a person would; the final response (not followed)."""
    page = http.get(authorize_url(running, ref, **params), allow_redirects=False)
    assert page.status_code == 200, page.text
    answer = log_in(http, running, page, user, password, ref, allow_redirects=False)
    if answer.status_code == 200 and "Permissions requested" in answer.text:
        answer = decide(http, running, answer, accept, ref)
    return answer


def returned(answer):
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REPLY_URL.split("?")[0])
    return {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}


def sign_in_with_pkce(http, running, user):
    """Sign `user` in with a PKCE challenge; the reply's parameters (the code, the state) and
    the verifier that redeems the code."""
    verifier, challenge = pkce()
    params = returned(
        sign_in(http, running, user, code_challenge=challenge, code_challenge_method="S256")
    )
    return params, verifier


def redeem(http, running, code, verifier, ref="organizations", **overrides):
    form = {
        "client_id": CLIENT_ID,
        "client_secret": "kodo-signin-secret",
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REPLY_URL,
        "code_verifier": verifier,
        **overrides,
    }
    form = {k: v for k, v in form.items() if v is not None}
    return http.post(f"{running.authority_host}/{ref}/oauth2/v2.0/token", data=form)


def error_code(response):
    body = response.json()
    return body["error"], body["error_codes"][0]


def test_a_user_signs_in_and_gets_a_signed_id_token_with_tid_oid_and_nonce(sim, running, http):
    user = sim.tenants[1].users[0]

    params, verifier = sign_in_with_pkce(http, running, user)
    assert params["state"] == "the-state"
    response = redeem(http, running, params["code"], verifier, client_info="1")

    assert response.status_code == 200, response.text
    body = response.json()
    keys = http.get(f"{running.authority_host}/organizations/discovery/v2.0/keys").json()
    key = jwt.PyJWK(keys["keys"][0])
    claims = jwt.decode(
        body["id_token"],
        key,
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer=f"{running.authority_host}/{user.tenant.id}/v2.0",
    )
    assert claims["tid"] == user.tenant.id and claims["oid"] == user.id
    assert claims["preferred_username"] == user.upn and claims["nonce"] == "the-nonce"
    assert claims["name"] == user.display_name
    assert body["refresh_token"] and body["client_info"]


def test_discovery_for_organizations_names_the_issuer_by_tenant_id(running, http):
    config = http.get(
        f"{running.authority_host}/organizations/v2.0/.well-known/openid-configuration"
    ).json()
    assert config["issuer"] == f"{running.authority_host}/{{tenantid}}/v2.0"
    assert config["authorization_endpoint"].endswith("/organizations/oauth2/v2.0/authorize")
    assert config["token_endpoint"].endswith("/organizations/oauth2/v2.0/token")


def test_a_code_is_redeemed_once(sim, running, http):
    params, verifier = sign_in_with_pkce(http, running, sim.tenants[0].users[1])
    assert redeem(http, running, params["code"], verifier).status_code == 200

    again = redeem(http, running, params["code"], verifier)

    assert again.status_code == 400
    assert error_code(again) == ("invalid_grant", 54005)


def test_a_wrong_pkce_verifier_is_refused_and_burns_the_code(sim, running, http):
    params, verifier = sign_in_with_pkce(http, running, sim.tenants[0].users[1])

    wrong = redeem(http, running, params["code"], pkce()[0])
    missing = redeem(http, running, params["code"], None)

    assert wrong.status_code == 400 and error_code(wrong) == ("invalid_grant", 50148)
    assert "AADSTS50148" in wrong.json()["error_description"]
    assert error_code(missing) == ("invalid_grant", 54005)


def test_the_reply_url_must_be_the_one_the_code_was_issued_for(sim, running, http):
    params, verifier = sign_in_with_pkce(http, running, sim.tenants[0].users[1])
    response = redeem(
        http, running, params["code"], verifier, redirect_uri="https://evil.example/cb"
    )
    assert error_code(response) == ("invalid_grant", 500112)


def test_an_expired_code_is_refused(sim, running, http):
    sim.configure(code_lifetime=-1)
    params, verifier = sign_in_with_pkce(http, running, sim.tenants[0].users[1])
    assert error_code(redeem(http, running, params["code"], verifier)) == ("invalid_grant", 70008)


def test_the_client_must_authenticate(sim, running, http):
    params, verifier = sign_in_with_pkce(http, running, sim.tenants[0].users[1])
    no_secret = redeem(http, running, params["code"], verifier, client_secret=None)
    assert no_secret.status_code == 401
    assert error_code(no_secret) == ("invalid_client", 7000218)
    bad = redeem(http, running, params["code"], verifier, client_secret="wrong")
    assert error_code(bad) == ("invalid_client", 7000215)


def test_an_unregistered_reply_url_is_a_page_never_a_redirect(running, http):
    answer = http.get(
        authorize_url(running, redirect_uri="https://evil.example/cb"), allow_redirects=False
    )
    assert answer.status_code == 400
    assert "AADSTS50011" in answer.text and "Location" not in answer.headers


def test_a_loopback_reply_url_matches_any_port(running, http):
    answer = http.get(
        authorize_url(running, redirect_uri="http://127.0.0.1:8123/accounts/microsoft/callback/"),
        allow_redirects=False,
    )
    assert answer.status_code == 200 and "Sign in" in answer.text


def test_an_unknown_client_is_a_page(running, http):
    answer = http.get(
        authorize_url(running, client_id="00000000-0000-4000-8000-00000000dead"),
        allow_redirects=False,
    )
    assert answer.status_code == 400 and "AADSTS700016" in answer.text


def test_errors_after_the_reply_url_check_go_back_to_the_app_with_the_state(running, http):
    implicit = returned(
        http.get(authorize_url(running, response_type="id_token"), allow_redirects=False)
    )
    no_scope = returned(http.get(authorize_url(running, scope=None), allow_redirects=False))
    silent = returned(http.get(authorize_url(running, prompt="none"), allow_redirects=False))

    assert implicit["error"] == "unauthorized_client"
    assert implicit["error_description"].startswith("AADSTS700054")
    assert implicit["state"] == "the-state"
    assert (
        no_scope["error"] == "invalid_request" and "AADSTS900144" in no_scope["error_description"]
    )
    assert silent["error"] == "login_required"


def test_a_wrong_password_shows_the_page_again(sim, running, http):
    answer = sign_in(http, running, sim.tenants[0].users[1], password="not-it")
    assert answer.status_code == 400 and "AADSTS50126" in answer.text


def test_a_tenant_endpoint_refuses_a_user_of_another_tenant(sim, running, http):
    answer = sign_in(http, running, sim.tenants[1].users[0], ref=sim.tenants[0].id)
    assert answer.status_code == 400 and "AADSTS50020" in answer.text


def test_declining_consent_returns_access_denied(sim, running, http):
    params = returned(sign_in(http, running, sim.tenants[0].users[2], accept=False))
    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS65004")


def test_consent_is_asked_once_per_user_and_never_after_admin_consent(sim, running, http):
    user = sim.tenants[0].users[1]
    returned(sign_in(http, running, user))
    page = http.get(authorize_url(running), allow_redirects=False)
    again = log_in(http, running, page, user, allow_redirects=False)
    assert again.status_code == 302  # no consent page the second time

    other = sim.tenants[1].users[1]
    sim.grant_consent(CLIENT_ID, tenant=sim.tenants[1].id)
    page = http.get(authorize_url(running), allow_redirects=False)
    first = log_in(http, running, page, other, allow_redirects=False)
    assert first.status_code == 302


def test_admin_consent_needs_the_tenants_administrator(sim, running, http):
    tenant = sim.tenants[1]
    url = f"{running.authority_host}/{tenant.id}/adminconsent?" + urlencode(
        {
            "client_id": CLIENT_ID,
            "redirect_uri": REPLY_URL,
            "state": "s1",
        }
    )
    page = http.get(url)
    refused = log_in(http, running, page, tenant.users[1], ref=tenant.id)
    assert refused.status_code == 403 and "AADSTS90094" in refused.text

    page = http.get(url)
    consent = log_in(http, running, page, tenant.administrator, ref=tenant.id)
    params = returned(decide(http, running, consent, accept=True, ref=tenant.id))
    assert params == {"admin_consent": "True", "tenant": tenant.id, "state": "s1"}
    assert CLIENT_ID in tenant.consented_apps


def test_id_token_lifetime_can_be_made_short_for_expiry_tests(sim, running, http):
    sim.configure(id_token_lifetime=-600)
    params, verifier = sign_in_with_pkce(http, running, sim.tenants[0].users[1])
    token = redeem(http, running, params["code"], verifier).json()["id_token"]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["exp"] < claims["iat"]


def test_a_signin_apps_file_in_the_state_dir_registers_apps_at_start(tmp_path):
    (tmp_path / "signin-apps.json").write_text(
        json.dumps(
            [
                {
                    "name": "Kodo demo",
                    "client_id": "6e1e1e1e-0000-4000-8000-0000000000ff",
                    "client_secret": "s",
                    "redirect_uris": ["http://127.0.0.1/cb"],
                }
            ]
        )
    )
    sim = Simulator.generate(seed=9, users=2, files_per_user=1)
    with sim.serve(state_dir=tmp_path) as running:
        apps = running.info["tenants"][0]["apps"]
        app = next(a for a in apps if a["name"] == "Kodo demo")
        assert app["redirect_uris"] == ["http://127.0.0.1/cb"]
        assert app["sign_in_audience"] == "AzureADMultipleOrgs"
