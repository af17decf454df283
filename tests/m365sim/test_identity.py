import base64
import hashlib
import json
import time
import uuid

import msal
import pytest
import requests
from conftest import GRAPH_SCOPE, GraphClient
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs12


def claims_of(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def msal_app(info, credential, app_index=0, tenant_id=None):
    session = requests.Session()
    session.trust_env = False
    session.verify = info["ca_file"]
    tenant = info["tenants"][0]
    return msal.ConfidentialClientApplication(
        tenant["apps"][app_index]["client_id"],
        client_credential=credential,
        authority=f"{info['authority_host']}/{tenant_id or tenant['tenant_id']}",
        http_client=session,
        instance_discovery=False,
    )


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(info, app, alg="RS256", aud=None, exp_in=600, jti=None, signer=None):
    signer = signer or app
    key, cert, _ = pkcs12.load_key_and_certificates(
        open(signer["pfx_path"], "rb").read(), signer["pfx_password"].encode()
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    header = {"alg": alg, "typ": "JWT"}
    if alg == "RS256":
        header["x5t"] = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode()
    else:
        header["x5t#S256"] = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode()
    now = time.time()
    claims = {
        "aud": aud
        or f"{info['authority_host']}/{info['tenants'][0]['tenant_id']}/oauth2/v2.0/token",
        "iss": app["client_id"],
        "sub": app["client_id"],
        "iat": now,
        "exp": now + exp_in,
        "jti": jti or str(uuid.uuid4()),
    }
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    pad = padding.PKCS1v15() if alg == "RS256" else padding.PSS(padding.MGF1(hashes.SHA256()), 32)
    return signing_input + "." + b64url(key.sign(signing_input.encode(), pad, hashes.SHA256()))


def post_assertion(client, jwt):
    return client.session.post(
        client.token_url,
        data={
            "client_id": client.app["client_id"],
            "grant_type": "client_credentials",
            "scope": GRAPH_SCOPE,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": jwt,
        },
    )


def test_msal_gets_a_token_with_a_client_secret(running):
    app = running.info["tenants"][0]["apps"][0]
    result = msal_app(running.info, app["client_secret"]).acquire_token_for_client([GRAPH_SCOPE])
    assert result["token_type"] == "Bearer"
    claims = claims_of(result["access_token"])
    assert claims["appid"] == app["client_id"]
    assert claims["appidacr"] == "1"
    assert set(claims["roles"]) == set(app["roles"])


def test_msal_gets_a_token_with_a_password_protected_pfx(running, sim):
    app = running.info["tenants"][0]["apps"][0]
    credential = {"private_key_pfx_path": app["pfx_path"], "passphrase": app["pfx_password"]}
    result = msal_app(running.info, credential).acquire_token_for_client([GRAPH_SCOPE])
    assert claims_of(result["access_token"])["appidacr"] == "2"
    assert sim.stats()["tokens"] == 1


def test_msal_signs_with_a_pem_key_and_sha1_thumbprint(running):
    app = running.info["tenants"][0]["apps"][0]
    key, _, _ = pkcs12.load_key_and_certificates(
        open(app["pfx_path"], "rb").read(), app["pfx_password"].encode()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    credential = {"private_key": pem, "thumbprint": app["thumbprint"]}
    result = msal_app(running.info, credential).acquire_token_for_client([GRAPH_SCOPE])
    assert "access_token" in result, result


def test_a_wrong_secret_fails_as_microsoft_does(running):
    result = msal_app(running.info, "not-the-secret").acquire_token_for_client([GRAPH_SCOPE])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")


def test_another_apps_certificate_is_refused(running, client):
    other = running.info["tenants"][0]["apps"][1]
    response = post_assertion(client, assertion(running.info, client.app, signer=other))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "AADSTS700027" in response.json()["error_description"]


def test_an_unknown_tenant_makes_msal_raise(running):
    app = running.info["tenants"][0]["apps"][0]
    with pytest.raises(ValueError):
        msal_app(running.info, app["client_secret"], tenant_id=str(uuid.uuid4()))
    response = GraphClient(running.info).session.get(
        f"{running.info['authority_host']}/{uuid.uuid4()}/v2.0/.well-known/openid-configuration"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_tenant"
    assert "AADSTS90002" in response.json()["error_description"]


def test_a_scope_without_default_is_refused(client):
    response = client.request_token(scope="https://graph.microsoft.com/User.Read.All")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_an_unknown_client_id_is_refused(client):
    response = client.request_token(client_id=str(uuid.uuid4()))
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_a_signed_assertion_is_accepted_once(running, client, alg):
    jwt = assertion(running.info, client.app, alg=alg)
    assert post_assertion(client, jwt).status_code == 200
    replay = post_assertion(client, jwt)
    assert replay.status_code == 401
    assert "AADSTS700025" in replay.json()["error_description"]


def test_an_assertion_for_another_audience_or_expired_is_refused(running, client):
    wrong_aud = post_assertion(
        client, assertion(running.info, client.app, aud="https://login.example/token")
    )
    assert wrong_aud.status_code == 401 and "AADSTS700212" in wrong_aud.json()["error_description"]
    expired = post_assertion(client, assertion(running.info, client.app, exp_in=-3600))
    assert expired.status_code == 401 and "AADSTS700024" in expired.json()["error_description"]


def test_tokens_expire(sim, client):
    sim.configure(token_lifetime=1)
    response = client.request_token()
    assert response.json()["expires_in"] == 1
    client._token = response.json()["access_token"]
    deadline = time.monotonic() + 5
    while client.get("/users").status_code == 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    answer = client.get("/users")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_a_request_without_token_gets_401(client):
    response = client.session.get(client.base + "/users")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "innerError" in response.json()["error"]


def test_missing_consent_gets_403_like_graph(running, sim, first_user):
    no_files = GraphClient(running.info, app_index=1)
    assert no_files.get("/users").status_code == 200
    denied = no_files.get(f"/users/{first_user}/drive")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "accessDenied"
    sim.set_app_roles(no_files.app["client_id"], [])
    still_granted = no_files.get("/users")  # roles are fixed in the token already issued
    assert still_granted.status_code == 200
    refused = no_files.get(
        "/users", headers={"Authorization": f"Bearer {no_files.token(fresh=True)}"}
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "Authorization_RequestDenied"


def test_revoked_tokens_get_401_and_new_ones_work(sim, client):
    assert client.get("/users").status_code == 200
    sim.revoke_tokens(client.app["client_id"])
    assert client.get("/users").status_code == 401
    client.token(fresh=True)
    assert client.get("/users").status_code == 200
