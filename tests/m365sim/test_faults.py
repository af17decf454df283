import time

import pytest
import requests

from m365sim import Simulator, quickxorhash


def item_url(client, user, item_id):
    return f"/users/{user}/drive/items/{item_id}"


def test_faults_fire_at_their_configured_rate_deterministically(sim, client, first_user):
    item = sim.list_items(first_user)[1]
    sim.set_fault("item", "503", rate=0.25, seed=5)
    pattern = [client.get(item_url(client, first_user, item["id"])).status_code for _ in range(200)]
    failures = pattern.count(503)
    assert set(pattern) == {200, 503}
    assert 30 <= failures <= 70
    assert sim.stats()["faults"]["item"]["503"] == failures
    sim.clear_faults()
    sim.set_fault("item", "503", rate=0.25, seed=5)
    again = [client.get(item_url(client, first_user, item["id"])).status_code for _ in range(200)]
    assert again == pattern


@pytest.mark.parametrize("retry_after, header", [(2, "2"), (0.25, "0.25"), (None, None)])
def test_429_carries_retry_after_as_configured(sim, client, retry_after, header):
    sim.set_fault("users", "429", rate=1.0, max_count=1, retry_after=retry_after)
    response = client.get("/users")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "TooManyRequests"
    assert response.headers.get("Retry-After") == header


def test_retrying_before_retry_after_is_punished(sim, client):
    sim.set_fault("users", "429", rate=1.0, max_count=1, retry_after=0.3)
    assert client.get("/users").status_code == 429
    early = client.get("/users")
    assert early.status_code == 429 and early.headers["Retry-After"] == "0.3"
    assert sim.stats()["throttle_penalties"] == 1
    time.sleep(0.35)  # honour Retry-After, as a client must
    assert client.get("/users").status_code == 200


def test_drive_endpoints_throttle_with_activity_limit_reached(sim, client, first_user):
    sim.set_fault("drive", "429", max_count=1, retry_after=None)
    response = client.get(f"/users/{first_user}/drive")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "activityLimitReached"


def download_url(sim, client, user, size=300_000):
    item = sim.add_file(user, f"/fault-{time.monotonic_ns()}.bin", size=size)
    meta = client.get(f"/users/{user}/drive/items/{item['id']}").json()
    return meta["@microsoft.graph.downloadUrl"], meta["file"]["hashes"]["quickXorHash"]


def test_a_connection_reset_mid_body(sim, client, first_user):
    url, _ = download_url(sim, client, first_user)
    sim.set_fault("download", "reset", max_count=1, after_bytes=100_000)
    with pytest.raises(
        (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)
    ):
        _ = client.session.get(url).content
    assert client.session.get(url).status_code == 200


def test_a_truncated_body(sim, client, first_user):
    url, _ = download_url(sim, client, first_user)
    sim.set_fault("download", "truncate", max_count=1, after_bytes=1000)
    with pytest.raises(
        (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)
    ):
        _ = client.session.get(url).content


def test_a_corrupted_body_fails_the_hash(sim, client, first_user):
    url, expected = download_url(sim, client, first_user)
    sim.set_fault("download", "corrupt", max_count=1)
    body = client.session.get(url).content
    assert len(body) == 300_000
    assert quickxorhash(body) != expected
    assert quickxorhash(client.session.get(url).content) == expected


def test_a_stalled_body_times_out_the_client(sim, client, first_user):
    url, expected = download_url(sim, client, first_user)
    sim.set_fault("download", "stall", max_count=1, after_bytes=1000, stall_seconds=1.5)
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout)):
        _ = client.session.get(url, timeout=0.3).content
    patient = client.session.get(url, timeout=10)
    assert quickxorhash(patient.content) == expected


def test_503_and_504_on_the_content_redirect(sim, client, first_user):
    item = next(i for i in sim.list_items(first_user) if "quickXorHash" in i and not i["malware"])
    sim.set_fault("content", "503", max_count=1, retry_after=1)
    sim.set_fault("content", "504", max_count=1)
    first = client.get(
        f"/users/{first_user}/drive/items/{item['id']}/content", allow_redirects=False
    )
    second = client.get(
        f"/users/{first_user}/drive/items/{item['id']}/content", allow_redirects=False
    )
    assert (first.status_code, first.headers.get("Retry-After")) == (503, "1")
    assert second.status_code == 504
    assert (
        client.get(
            f"/users/{first_user}/drive/items/{item['id']}/content", allow_redirects=False
        ).status_code
        == 302
    )


def test_resync_required_on_a_delta_token(sim, client, first_user):
    drive_id = sim.user_info(first_user)["drive_id"]
    _, _, delta_link = client.collect(f"/drives/{drive_id}/root/delta")
    sim.set_fault("drive_delta", "resync", max_count=1)
    assert client.get(f"/drives/{drive_id}/root/delta").status_code == 200  # no token: not eligible
    gone = client.get(delta_link)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "resyncRequired"


def test_a_token_revoked_mid_run(sim, client):
    assert client.get("/users").status_code == 200
    sim.set_fault("users", "revoke", max_count=1)
    assert client.get("/users").status_code == 401
    assert client.get("/users").status_code == 401
    client.token(fresh=True)
    assert client.get("/users").status_code == 200


def test_token_endpoint_faults(sim, client):
    sim.set_fault("token", "503", max_count=1)
    assert client.request_token().status_code == 503
    assert client.request_token().status_code == 200


def test_unknown_fault_kinds_are_refused():
    sim = Simulator()
    with pytest.raises(ValueError):
        sim.set_fault("download", "explode")
    with pytest.raises(ValueError):
        sim.set_fault("nowhere", "503")
