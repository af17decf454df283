"""Injected faults on upload sessions: createUploadSession (endpoint "upload") and the
fragments PUT to the upload URL (endpoint "fragment")."""

import os
import time

import pytest
import requests
from conftest import FRAGMENT

from m365sim import quickxorhash

BROKEN = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


def new_session(client, user, name):
    response = client.create_session(
        f"/users/{user}/drive/root:/faults/{name}:/createUploadSession",
        **{"@microsoft.graph.conflictBehavior": "fail"},
    )
    assert response.status_code == 200, response.text
    return response.json()["uploadUrl"]


def next_range(client, url):
    return client.session.get(url).json()["nextExpectedRanges"]


def test_a_throttled_fragment_carries_retry_after_and_changes_nothing(sim, client, first_user):
    data = os.urandom(FRAGMENT + 100)
    url = new_session(client, first_user, "throttled.bin")
    sim.set_fault("fragment", "429", max_count=1, retry_after=0.2)
    throttled = client.put_fragment(url, data[:FRAGMENT], 0, len(data))
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "0.2"
    assert next_range(client, url) == ["0-"]
    deadline = time.monotonic() + 10
    while (response := client.put_fragment(url, data[:FRAGMENT], 0, len(data))).status_code == 429:
        assert time.monotonic() < deadline
        time.sleep(float(response.headers["Retry-After"]))
    assert response.status_code == 202
    last = client.put_fragment(url, data[FRAGMENT:], FRAGMENT, len(data))
    assert last.status_code == 201 and last.json()["file"]["hashes"][
        "quickXorHash"
    ] == quickxorhash(data)


def test_a_reset_mid_fragment_leaves_the_received_ranges_as_they_were(sim, client, first_user):
    data = os.urandom(FRAGMENT * 3 + 10)
    url = new_session(client, first_user, "reset.bin")
    assert client.put_fragment(url, data[:FRAGMENT], 0, len(data)).status_code == 202
    sim.set_fault("fragment", "reset", max_count=1, after_bytes=100_000)
    with pytest.raises(BROKEN):
        client.put_fragment(url, data[FRAGMENT : 2 * FRAGMENT], FRAGMENT, len(data))
    assert next_range(client, url) == [f"{FRAGMENT}-"]
    for first in range(FRAGMENT, len(data), FRAGMENT):
        response = client.put_fragment(url, data[first : first + FRAGMENT], first, len(data))
    assert response.status_code == 201, response.text
    assert response.json()["file"]["hashes"]["quickXorHash"] == quickxorhash(data)
    assert sim.file_bytes(first_user, "/faults/reset.bin") == data


def test_a_lost_answer_after_the_fragment_was_taken(sim, client, first_user):
    data = os.urandom(FRAGMENT * 2 + 10)
    url = new_session(client, first_user, "lost answer.bin")
    sim.set_fault("fragment", "reset", max_count=1, after_commit=True)
    with pytest.raises(BROKEN):
        client.put_fragment(url, data[:FRAGMENT], 0, len(data))
    assert client.put_fragment(url, data[:FRAGMENT], 0, len(data)).status_code == 416
    assert next_range(client, url) == [f"{FRAGMENT}-"]
    assert (
        client.put_fragment(url, data[FRAGMENT : 2 * FRAGMENT], FRAGMENT, len(data)).status_code
        == 202
    )
    last = client.put_fragment(url, data[2 * FRAGMENT :], 2 * FRAGMENT, len(data))
    assert last.status_code == 201 and sim.file_bytes(first_user, "/faults/lost answer.bin") == data


@pytest.mark.parametrize("kind", ["503", "reset"])
def test_faults_apply_to_create_upload_session(sim, client, first_user, kind):
    sim.set_fault("upload", kind, max_count=1)
    path = f"/users/{first_user}/drive/root:/faults/{kind}.bin:/createUploadSession"
    if kind == "reset":
        with pytest.raises(BROKEN):
            client.create_session(path)
    else:
        assert client.create_session(path).status_code == 503
    assert client.create_session(path).status_code == 200
