"""A download URL issued before a file's content changed."""

import os

import pytest

from m365sim import quickxorhash


def fresh_download(client, user, item_id):
    meta = client.get(f"/users/{user}/drive/items/{item_id}").json()
    return meta["@microsoft.graph.downloadUrl"], meta["file"]["hashes"]["quickXorHash"]


@pytest.mark.parametrize("new_size", [100_000, 500_000])
def test_an_old_download_url_serves_the_old_bytes_at_their_length(
    sim, client, first_user, new_size
):
    item = sim.add_file(first_user, f"/stale {new_size}.bin", size=300_000)
    url, old_hash = fresh_download(client, first_user, item["id"])
    old_bytes = client.session.get(url).content
    sim.modify_file(first_user, item["id"], size=new_size)
    stale = client.session.get(url)
    assert stale.status_code in (200, 404, 410)
    if stale.status_code == 200:
        assert len(stale.content) == 300_000 and stale.content == old_bytes
        assert quickxorhash(stale.content) == old_hash
    new_url, new_hash = fresh_download(client, first_user, item["id"])
    current = client.session.get(new_url).content
    assert len(current) == new_size and quickxorhash(current) == new_hash != old_hash


def test_an_old_download_url_of_uploaded_content_serves_those_bytes(sim, client, first_user):
    first, second = os.urandom(70_000), os.urandom(20_000)
    item = sim.add_file(first_user, "/stale uploaded.bin", content=first)
    url, _ = fresh_download(client, first_user, item["id"])
    response = client.send(
        "PUT", f"/users/{first_user}/drive/items/{item['id']}/content", data=second
    )
    assert response.status_code == 200
    assert client.session.get(url).content == first
    assert client.session.get(response.json()["@microsoft.graph.downloadUrl"]).content == second
