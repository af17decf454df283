"""The Graph client against m365sim over HTTPS: tokens, paging, retries and error mapping."""

import logging
import threading
import time
from pathlib import Path

import pytest
import requests

from o365.clouds import CLOUDS, CUSTOM, GLOBAL_SCOPE, custom_endpoints, endpoints_for
from o365.directory import NO_ONEDRIVE_CODES
from o365.graph import (
    AuthenticationFailed,
    Credentials,
    GraphUnavailable,
    NotFound,
    PermissionDenied,
    ResyncRequired,
    Throttled,
)
from o365.graph.tokens import token_claims
from o365.permissions import missing_permissions
from tests.o365.conftest import sim_app, sim_credentials, sim_endpoints
from tests.polling import wait_for

WRONG_SECRET = "Wr0ng8Q~not-the-real-secret-value-123456"


def user_ids(sim):
    return {u["id"] for u in sim.list_users()}


# ----- tokens -------------------------------------------------------------------------


def test_it_gets_a_token_with_a_client_secret(m365sim, graph_client):
    client = graph_client()

    claims = token_claims(client.token())

    assert claims["appid"] == sim_app(m365sim)[1]["client_id"]
    assert claims["appidacr"] == "1"  # signed in with a secret


def test_it_gets_a_token_with_a_password_protected_pfx(m365sim, sim, graph_client):
    client = graph_client(sim_credentials(m365sim, certificate=True))

    claims = token_claims(client.token())
    assert claims["appidacr"] == "2"  # signed in with a certificate

    # a second token needs a second assertion: m365sim refuses a replayed one
    sim.revoke_tokens(claims["appid"])
    assert client.get("/users", params={"$top": "1"})["value"]


def test_a_wrong_pfx_password_is_reported_without_the_password(m365sim, graph_client):
    client = graph_client(sim_credentials(m365sim, certificate=True, pfx_password="not-it-1234"))

    with pytest.raises(AuthenticationFailed) as caught:
        client.token()

    assert caught.value.code == "invalid_certificate"
    assert "password does not open this PFX" in str(caught.value)
    assert "not-it-1234" not in str(caught.value)


def test_a_wrong_secret_is_reported_with_aadsts7000215_and_without_the_secret(
    m365sim, graph_client
):
    client = graph_client(sim_credentials(m365sim, client_secret=WRONG_SECRET))

    with pytest.raises(AuthenticationFailed) as caught:
        client.token()

    error = caught.value
    assert error.code == "invalid_client"
    assert error.aadsts == "AADSTS7000215"
    assert error.status == 401
    assert "AADSTS7000215" in str(error)
    assert "client secret" in str(error)
    assert WRONG_SECRET not in str(error) + repr(error.args) + (error.message or "")


def test_an_unknown_tenant_is_reported(m365sim, graph_client):
    unknown = "00000000-0000-4000-8000-000000000000"
    client = graph_client(sim_credentials(m365sim, tenant_id=unknown))

    with pytest.raises(AuthenticationFailed) as caught:
        client.token()

    assert caught.value.code == "invalid_tenant"
    assert caught.value.aadsts == "AADSTS90002"
    assert caught.value.status == 400
    assert "tenant was not found" in str(caught.value)


def test_an_unknown_client_id_is_reported(m365sim, graph_client):
    unknown = "11111111-2222-4333-8444-555555555555"
    client = graph_client(sim_credentials(m365sim, client_id=unknown))

    with pytest.raises(AuthenticationFailed) as caught:
        client.token()

    assert caught.value.code == "unauthorized_client"
    assert caught.value.aadsts == "AADSTS700016"


def test_clients_of_one_configuration_share_the_token(m365sim, sim, graph_client):
    first = graph_client(cache_key="shared-configuration")
    token = first.token()
    tokens_before = sim.stats()["tokens"]

    second = graph_client(cache_key="shared-configuration")

    assert second.token() == token
    assert sim.stats()["tokens"] == tokens_before


def test_roles_show_a_missing_files_permission(m365sim, graph_client):
    full = graph_client()
    no_files = graph_client(sim_credentials(m365sim, name="Kodo Backup (no files)"))

    assert set(full.roles()) == set(sim_app(m365sim)[1]["roles"])
    assert missing_permissions(full.roles()) == []
    assert no_files.roles() == ["User.Read.All"]
    assert missing_permissions(no_files.roles()) == ["Files.Read.All"]


def test_a_missing_permission_is_permission_denied(m365sim, sim, graph_client):
    client = graph_client(sim_credentials(m365sim, name="Kodo Backup (no files)"))
    user = next(u for u in sim.list_users() if u["drive_id"])

    with pytest.raises(PermissionDenied) as caught:
        client.get(f"/users/{user['id']}/drive")

    assert caught.value.status == 403
    assert caught.value.code == "accessDenied"
    assert caught.value.request_id


def test_token_request_throttling_is_retried(sim, graph_client, sleeps):
    sim.set_fault("token", "429", max_count=1, retry_after=0.05)
    sim.set_fault("token", "503", max_count=1, retry_after=None)

    assert graph_client().token()

    assert sleeps[0] == 0.05
    assert 0.01 <= sleeps[1] <= 0.02  # second retry, no Retry-After: backoff_base * 2 ± jitter


# ----- paging -------------------------------------------------------------------------


def test_paging_through_users_gives_every_user_once(sim, graph_client):
    client = graph_client()

    pages = list(client.iter_pages("/users", params={"$top": 7, "$select": "id,displayName"}))

    ids = [u["id"] for page in pages for u in page["value"]]
    assert len(pages) > 1
    assert len(ids) == len(set(ids))
    assert set(ids) == user_ids(sim)


# ----- retries ------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after, expected", [(1, 1.0), (0.05, 0.05)])
def test_429_waits_for_retry_after_then_succeeds(sim, graph_client, sleeps, retry_after, expected):
    sim.set_fault("users", "429", max_count=2, retry_after=retry_after)

    page = graph_client().get("/users", params={"$top": 5})

    assert len(page["value"]) == 5
    assert sleeps == [expected, expected]
    assert sim.stats()["throttle_penalties"] == 0  # never came back early


def test_one_threads_429_makes_the_clients_other_requests_wait(sim, graph_client, sleeps):
    client = graph_client()
    client.token()
    sim.set_fault("users", "429", max_count=1, retry_after=0.5)
    first = threading.Thread(target=client.get, args=("/users",))
    first.start()
    deadline = time.monotonic() + 10
    while not sleeps and time.monotonic() < deadline:  # until the first is told to wait
        time.sleep(0.01)

    client.get("/users/delta")  # another request, as from another download thread

    first.join()
    assert len(sleeps) == 2 and 0 < sleeps[1] <= 0.5  # the second waited out the first's 429
    assert sim.stats()["throttle_penalties"] == 0  # nobody came back early


def test_429_without_retry_after_backs_off_exponentially(sim, graph_client, sleeps):
    sim.set_fault("users", "429", max_count=3, retry_after=None)

    graph_client(backoff_base=0.01).get("/users", params={"$top": 5})

    assert len(sleeps) == 3
    for attempt, wait in enumerate(sleeps):
        ceiling = 0.01 * 2**attempt
        assert ceiling / 2 <= wait <= ceiling


@pytest.mark.parametrize("kind", ["503", "504", "500", "502"])
def test_server_errors_are_retried(sim, graph_client, sleeps, kind):
    sim.set_fault("users", kind, max_count=2, retry_after=0.02 if kind == "503" else None)

    assert graph_client().get("/users", params={"$top": 3})["value"]

    assert len(sleeps) == 2
    if kind == "503":
        assert sleeps == [0.02, 0.02]


def test_retries_are_bounded_then_throttled(sim, graph_client, sleeps):
    sim.set_fault("users", "429", retry_after=0.01)

    with pytest.raises(Throttled) as caught:
        graph_client(max_retries=3).get("/users")

    assert len(sleeps) == 3
    assert caught.value.status == 429
    assert caught.value.code == "TooManyRequests"
    assert caught.value.retry_after == 0.01
    assert "throttling" in str(caught.value)


def test_a_retry_after_beyond_the_limit_is_left_to_the_caller(sim, graph_client, sleeps):
    sim.set_fault("users", "503", max_count=1, retry_after=3600)

    with pytest.raises(Throttled) as caught:
        graph_client(max_retry_after=60).get("/users")

    assert sleeps == []
    assert caught.value.retry_after == 3600


def test_a_connection_reset_mid_body_is_retried(sim, graph_client, sleeps):
    sim.set_fault("users", "reset", max_count=1, after_bytes=200)

    page = graph_client().get("/users", params={"$top": 20})

    assert len(page["value"]) == 20
    assert len(sleeps) == 1
    assert sim.stats()["faults"]["users"]["reset"] >= 1


def test_a_server_that_keeps_resetting_is_unavailable(sim, graph_client, sleeps):
    sim.set_fault("users", "reset", after_bytes=10)

    with pytest.raises(GraphUnavailable):
        graph_client(max_retries=2).get("/users")

    assert len(sleeps) == 2


def test_a_revoked_token_is_refreshed_once(m365sim, sim, graph_client):
    client = graph_client()
    client.get("/users", params={"$top": 1})
    tokens_before = sim.stats()["tokens"]

    sim.revoke_tokens(sim_app(m365sim)[1]["client_id"])
    page = client.get("/users", params={"$top": 1})

    assert page["value"]
    assert sim.stats()["tokens"] == tokens_before + 1


def test_a_token_refused_again_after_refresh_is_authentication_failed(sim, graph_client):
    sim.set_fault("users", "revoke", max_count=2)

    with pytest.raises(AuthenticationFailed) as caught:
        graph_client().get("/users", params={"$top": 1})

    assert caught.value.status == 401
    assert caught.value.code == "InvalidAuthenticationToken"


# ----- errors -------------------------------------------------------------------------


def test_a_user_without_onedrive_is_not_found_with_microsofts_code(sim, graph_client):
    client = graph_client()
    without_drive = [u for u in sim.list_users() if not u["drive_id"]]

    errors = []
    for user in without_drive:
        with pytest.raises(NotFound) as caught:
            client.get(f"/users/{user['id']}/drive")
        errors.append(caught.value)

    assert {(e.code, e.message) for e in errors} == {
        ("ResourceNotFound", "User's mysite not found."),
        ("BadRequest", "Unable to retrieve user's mysite URL."),
        ("UnknownError", "404 FILE NOT FOUND"),
    }
    assert all(e.request_id for e in errors)
    assert "User's mysite not found." in str(errors[0]) + str(errors[1]) + str(errors[2])


def test_an_unknown_user_is_not_found(graph_client):
    with pytest.raises(NotFound) as caught:
        graph_client().get("/users/nobody@nowhere.example")

    assert caught.value.status == 404
    assert caught.value.code == "Request_ResourceNotFound"


def test_an_expired_delta_link_requires_a_resync(sim, graph_client):
    client = graph_client()
    user = next(u for u in sim.list_users() if u["drive_id"])
    pages = list(
        client.iter_pages(f"/drives/{user['drive_id']}/root/delta", params={"token": "latest"})
    )
    delta_link = pages[-1]["@odata.deltaLink"]

    sim.expire_delta_tokens(user["id"])

    with pytest.raises(ResyncRequired) as caught:
        client.get(delta_link)
    assert caught.value.status == 410
    assert caught.value.code == "resyncRequired"


def test_a_file_downloads_through_the_redirect_without_sending_the_token(sim, graph_client):
    client = graph_client()
    user = next(u for u in sim.list_users() if u["drive_id"])
    item = next(
        i
        for i in sim.list_items(user["id"])
        if not i["folder"] and not i["malware"] and not i["package"] and 0 < i["size"]
    )

    response = client.request(
        "GET", f"/drives/{user['drive_id']}/items/{item['id']}/content", stream=True
    )

    assert response.content == sim.file_bytes(user["id"], item["id"])
    assert "Authorization" not in response.request.headers  # the download host got no token


def test_a_throttled_download_makes_the_clients_other_downloads_wait(sim, graph_client, sleeps):
    client = graph_client()
    user = next(u for u in sim.list_users() if u["drive_id"])
    items = [
        i
        for i in sim.list_items(user["id"])
        if not i["folder"] and not i["malware"] and not i["package"] and 0 < i["size"]
    ][:2]
    urls = [
        client.get(f"/drives/{user['drive_id']}/items/{i['id']}")["@microsoft.graph.downloadUrl"]
        for i in items
    ]
    sim.set_fault("download", "429", max_count=1, retry_after=0.5)

    def download(url):
        client.request("GET", url, stream=True, authenticated=False).close()

    first = threading.Thread(target=download, args=(urls[0],))
    first.start()
    deadline = time.monotonic() + 10
    while not sleeps and time.monotonic() < deadline:  # until the first is told to wait
        time.sleep(0.01)
    download(urls[1])  # as another download thread of the same run
    first.join()

    assert len(sleeps) == 2 and 0 < sleeps[1] <= 0.5
    assert sim.stats()["throttle_penalties"] == 0


def test_the_token_is_only_sent_to_graph(graph_client):
    with pytest.raises(ValueError, match="Refusing to send"):
        graph_client().get("https://example.invalid/v1.0/users")


# ----- TLS ----------------------------------------------------------------------------


def test_the_session_ignores_requests_ca_bundle(m365sim, graph_client, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    # the trap: a plain session told to trust the simulator's CA is overridden by the variable
    plain = requests.Session()
    plain.verify = m365sim.info["ca_file"]
    with pytest.raises(requests.exceptions.SSLError):
        plain.get(m365sim.info["graph_base"] + "/users", timeout=10)
    plain.close()

    client = graph_client()

    assert client.session.trust_env is False
    assert client.get("/users", params={"$top": 1})["value"]


def test_an_untrusted_server_certificate_is_not_retried(m365sim, graph_client, sleeps):
    client = graph_client(endpoints=sim_endpoints(m365sim, trust_ca=False))

    with pytest.raises(GraphUnavailable) as caught:
        client.token()

    assert caught.value.code == "tlsCertificateNotTrusted"
    assert sleeps == []


# ----- secrets ------------------------------------------------------------------------


def test_credentials_never_show_their_secrets(m365sim):
    credentials = sim_credentials(m365sim)
    with_pfx = sim_credentials(m365sim, certificate=True)

    for text in (repr(credentials), str(credentials), repr(with_pfx)):
        assert credentials.client_secret not in text
        assert with_pfx.pfx_password not in text
    assert "client_secret='***'" in repr(credentials)


def test_credentials_need_a_secret_or_a_certificate():
    with pytest.raises(ValueError, match="client secret or a certificate"):
        Credentials(tenant_id="t", client_id="c")


def test_logs_never_contain_secrets_or_tokens(m365sim, sim, graph_client, caplog):
    caplog.set_level(logging.DEBUG)
    sim.set_fault("users", "429", max_count=1, retry_after=0.01)
    client = graph_client()
    token = client.token()
    client.get("/users", params={"$top": 2})
    with pytest.raises(AuthenticationFailed):
        graph_client(sim_credentials(m365sim, client_secret=WRONG_SECRET)).token()

    secret = sim_app(m365sim)[1]["client_secret"]
    assert caplog.records  # the client did log
    assert secret not in caplog.text
    assert WRONG_SECRET not in caplog.text
    assert token not in caplog.text


# ----- clouds and permissions ---------------------------------------------------------


def test_national_clouds_use_their_own_hosts_and_scopes():
    assert CLOUDS["global"].authority("t1") == "https://login.microsoftonline.com/t1"
    assert CLOUDS["global"].scope == GLOBAL_SCOPE
    assert endpoints_for("usgov").graph_base == "https://graph.microsoft.us/v1.0"
    assert endpoints_for("usgov").scope == "https://graph.microsoft.us/.default"
    assert endpoints_for("china").authority_host == "https://login.chinacloudapi.cn"
    assert endpoints_for("china").graph_base == "https://microsoftgraph.chinacloudapi.cn/v1.0"


def test_a_custom_cloud_is_checked_and_normalized(m365sim):
    ca_pem = Path(m365sim.info["ca_file"]).read_text()

    endpoints = endpoints_for(
        CUSTOM,
        authority_host="https://127.0.0.1:9443/",
        graph_base="https://127.0.0.1:9443/v1.0/",
        ca_pem=ca_pem,
    )

    assert endpoints.authority("t") == "https://127.0.0.1:9443/t"
    assert endpoints.graph_base == "https://127.0.0.1:9443/v1.0"
    assert endpoints.scope == GLOBAL_SCOPE
    with pytest.raises(ValueError, match="https://"):
        custom_endpoints("http://127.0.0.1:9443", "https://127.0.0.1:9443/v1.0")
    with pytest.raises(ValueError, match="without a path"):
        custom_endpoints("https://127.0.0.1:9443/tenant", "https://127.0.0.1:9443/v1.0")
    with pytest.raises(ValueError, match="not a PEM certificate"):
        custom_endpoints("https://h", "https://h/v1.0", ca_pem="hello")
    with pytest.raises(ValueError, match="Unknown cloud"):
        endpoints_for("mars")


@pytest.mark.parametrize(
    "roles, missing",
    [
        ([], ["User.Read.All", "Files.Read.All"]),
        (["User.Read.All"], ["Files.Read.All"]),
        (["User.Read.All", "Files.Read.All"], []),
        (["User.ReadWrite.All", "Files.ReadWrite.All"], []),
        (["Directory.Read.All", "Sites.Read.All"], []),
        (["Directory.ReadWrite.All", "Sites.ReadWrite.All"], []),
        (["Files.Read.All"], ["User.Read.All"]),
        (["Mail.Read", "User.Read"], ["User.Read.All", "Files.Read.All"]),
        (["user.read.all", "files.read.all"], []),
    ],
)
def test_missing_permissions(roles, missing):
    assert missing_permissions(roles) == missing


@pytest.mark.parametrize(
    "roles, missing",
    [
        (["User.Read.All", "Files.Read.All"], ["Files.ReadWrite.All"]),
        (["User.Read.All", "Files.ReadWrite.All"], []),
        (["Directory.Read.All", "Sites.ReadWrite.All"], []),
        (["User.Read.All", "Sites.Read.All"], ["Files.ReadWrite.All"]),
    ],
)
def test_missing_permissions_for_restore(roles, missing):
    assert missing_permissions(roles, restore=True) == missing


# ----- JSON batching --------------------------------------------------------------------


def drive_paths(sim):
    return [f"/users/{u['id']}/drive" for u in sim.list_users()]


def requests_made(sim, before):
    after = sim.stats()["requests"]
    return {kind: n - before.get(kind, 0) for kind, n in after.items() if n - before.get(kind, 0)}


def test_get_many_batches_twenty_at_a_time_and_types_the_errors(sim, graph_client):
    client = graph_client()
    client.token()
    users = sim.list_users()
    before = sim.stats()["requests"]

    answers = client.get_many(drive_paths(sim), params={"$select": "id"})

    assert requests_made(sim, before) == {"batch": 2, "drive": len(users)}  # 30 users: 20 + 10
    for user in users:
        answer = answers[f"/users/{user['id']}/drive"]
        if user["drive_id"]:
            assert answer.ok and answer.status == 200
            assert answer.json()["id"] == user["drive_id"]
        else:
            assert isinstance(answer.error, NotFound)
            assert answer.error.request_id and answer.error.code in NO_ONEDRIVE_CODES
            with pytest.raises(NotFound):
                answer.json()
    assert {(a.error.code, a.error.message) for a in answers.values() if a.error} == {
        ("ResourceNotFound", "User's mysite not found."),
        ("BadRequest", "Unable to retrieve user's mysite URL."),
        ("UnknownError", "404 FILE NOT FOUND"),
    }


def test_batch_answers_by_id_with_absolute_graph_urls(m365sim, sim, graph_client):
    user = sim.list_users()[0]
    client = graph_client()

    answers = client.batch(
        [
            {"id": "me", "url": f"{m365sim.info['graph_base']}/users/{user['id']}?$select=id"},
            {"id": "nobody", "method": "GET", "url": "users/nobody@nowhere.example"},
        ]
    )

    assert answers["me"].json()["id"] == user["id"]
    assert answers["nobody"].status == 404 and isinstance(answers["nobody"].error, NotFound)
    with pytest.raises(NotFound):
        client.batch([{"id": "nobody", "url": "/users/nobody@nowhere.example"}], raise_errors=True)
    with pytest.raises(ValueError, match="Graph requests only"):
        client.batch([{"id": "1", "url": "https://example.invalid/v1.0/users"}])
    with pytest.raises(ValueError, match="the id '1'"):
        client.batch([{"id": 1, "url": "/users"}, {"id": "1", "url": "/users"}])


def test_throttled_requests_of_a_batch_wait_for_retry_after(sim, graph_client, sleeps):
    client = graph_client()
    client.token()
    paths = drive_paths(sim)[:5]
    before = sim.stats()
    sim.set_fault("drive", "429", max_count=1, retry_after=0.05)

    answers = client.get_many(paths)

    assert all(a.ok for a in answers.values() if a.status != 404)
    assert sleeps == [0.05]  # one wait for the whole batch's throttled requests
    after = sim.stats()
    assert requests_made(sim, before["requests"]) == {"batch": 2, "drive": 10}
    assert (
        after["faults"]["drive"]["429"] - before["faults"].get("drive", {}).get("429", 0) == 5
    )  # the fault, then the batch's other requests within its Retry-After


@pytest.mark.parametrize("kind", ["503", "500"])
def test_failing_requests_of_a_batch_are_retried_with_backoff(sim, graph_client, sleeps, kind):
    sim.set_fault("drive", kind, rate=0.5, seed=11, retry_after=None)

    answers = graph_client().get_many(drive_paths(sim))

    assert not [a for a in answers.values() if a.error and not isinstance(a.error, NotFound)]
    assert sleeps and all(0.005 <= wait <= 0.64 for wait in sleeps)


def test_batch_retries_are_bounded_then_typed(sim, graph_client, sleeps):
    sim.set_fault("drive", "429", retry_after=0.01)
    client = graph_client(max_retries=2)
    paths = drive_paths(sim)[:3]

    answers = client.get_many(paths)

    assert len(sleeps) == 2
    errors = [answers[p].error for p in paths]
    assert all(
        isinstance(e, Throttled)
        and e.retry_after == 0.01
        and e.status == 429
        and e.code == "activityLimitReached"
        for e in errors
    )
    with pytest.raises(Throttled):
        client.get_many(paths, raise_errors=True)


def test_a_long_retry_after_in_a_batch_is_left_to_the_caller(sim, graph_client, sleeps):
    sim.set_fault("drive", "503", max_count=1, retry_after=3600)

    answers = graph_client(max_retry_after=60).get_many(drive_paths(sim)[:2])

    assert sleeps == []
    throttled = [a.error for a in answers.values() if isinstance(a.error, Throttled)]
    assert len(throttled) == 1 and throttled[0].retry_after == 3600


def test_a_throttled_or_cut_batch_is_sent_again(sim, graph_client, sleeps):
    client = graph_client()
    sim.set_fault("batch", "429", max_count=1, retry_after=0.02)
    sim.set_fault("batch", "reset", max_count=1, after_bytes=100)

    answers = client.get_many(drive_paths(sim)[:4])

    assert len(answers) == 4 and all(a.status in (200, 404) for a in answers.values())
    assert sleeps[0] == 0.02 and len(sleeps) == 2


def test_a_token_revoked_during_a_batch_is_refreshed_once(m365sim, sim, graph_client):
    client = graph_client()
    client.token()
    tokens = sim.stats()["tokens"]
    sim.set_fault("drive", "revoke", max_count=1)

    answers = client.get_many(drive_paths(sim)[:4])

    assert all(a.status in (200, 404) for a in answers.values())
    assert sim.stats()["tokens"] == tokens + 1


def test_a_missing_permission_in_a_batch_is_permission_denied(m365sim, sim, graph_client):
    client = graph_client(sim_credentials(m365sim, name="Kodo Backup (no files)"))
    user = sim.list_users()[0]["id"]

    answers = client.batch(
        [{"id": "u", "url": f"/users/{user}"}, {"id": "d", "url": f"/users/{user}/drive"}]
    )

    assert answers["u"].ok
    assert isinstance(answers["d"].error, PermissionDenied) and answers["d"].status == 403


def test_other_batches_wait_while_the_client_is_throttled(sim, graph_client, sleeps):
    client = graph_client()
    client.token()
    paths = drive_paths(sim)
    penalties = sim.stats()["throttle_penalties"]
    sim.set_fault("drive", "429", max_count=1, retry_after=0.4)
    first = threading.Thread(target=client.get_many, args=(paths[:3],))
    first.start()
    wait_for(
        lambda: 0.4 in sleeps,
        timeout=10,
        interval=0.01,
        what="the first batch throttled and waiting out its Retry-After",
    )

    answers = client.get_many(paths[3:6])  # waits too instead of being throttled again

    first.join()
    assert all(a.status in (200, 404) for a in answers.values())
    assert sim.stats()["throttle_penalties"] == penalties + 2  # the first batch's other two
    assert 0.4 in sleeps and any(0.05 < s < 0.4 for s in sleeps)
