import os

from m365sim import quickxorhash


def test_simple_upload_creates_a_file_with_matching_hash(sim, client, first_user):
    data = os.urandom(5000)
    response = client.send(
        "PUT", f"/users/{first_user}/drive/root:/Restored/a.bin:/content", data=data
    )
    assert response.status_code == 201, response.text
    item = response.json()
    assert item["size"] == 5000 and item["file"]["hashes"]["quickXorHash"] == quickxorhash(data)
    assert client.session.get(item["@microsoft.graph.downloadUrl"]).content == data
    assert sim.file_bytes(first_user, "/Restored/a.bin") == data
    parent_id = item["parentReference"]["id"]
    again = client.send(
        "PUT", f"/users/{first_user}/drive/items/{parent_id}:/a.bin:/content", data=b"new"
    )
    assert (
        again.status_code == 200 and again.json()["id"] == item["id"] and again.json()["size"] == 3
    )


def test_conflict_behaviors(sim, client, first_user):
    sim.add_file(first_user, "/c/report.txt", content=b"old")
    base = f"/users/{first_user}/drive/root:/c/report.txt:/content"
    failed = client.send("PUT", base + "?@microsoft.graph.conflictBehavior=fail", data=b"x")
    assert failed.status_code == 409 and failed.json()["error"]["code"] == "nameAlreadyExists"
    renamed = client.send("PUT", base + "?@microsoft.graph.conflictBehavior=rename", data=b"x")
    assert renamed.status_code == 201 and renamed.json()["name"] == "report 1.txt"
    replaced = client.send(
        "PUT", base + "?@microsoft.graph.conflictBehavior=replace", data=b"newer"
    )
    assert replaced.status_code == 200 and sim.file_bytes(first_user, "/c/report.txt") == b"newer"


def test_upload_session_in_chunks(sim, client, first_user):
    data = os.urandom(320 * 1024 * 3 + 1234)
    session = client.send(
        "POST",
        f"/users/{first_user}/drive/root:/big/upload.bin:/createUploadSession",
        json={"item": {"@microsoft.graph.conflictBehavior": "rename"}},
    )
    assert session.status_code == 200, session.text
    url = session.json()["uploadUrl"]
    assert url.startswith(client.info["download_base"])
    chunk = 320 * 1024
    wrong = client.session.put(
        url,
        data=data[chunk : 2 * chunk],
        headers={"Content-Range": f"bytes {chunk}-{2 * chunk - 1}/{len(data)}"},
    )
    assert wrong.status_code == 416
    for start in range(0, len(data), chunk):
        part = data[start : start + chunk]
        response = client.session.put(
            url,
            data=part,
            headers={"Content-Range": f"bytes {start}-{start + len(part) - 1}/{len(data)}"},
        )
        if start + chunk < len(data):
            assert response.status_code == 202
            assert response.json()["nextExpectedRanges"] == [f"{start + len(part)}-"]
    assert response.status_code == 201, response.text
    assert response.json()["file"]["hashes"]["quickXorHash"] == quickxorhash(data)
    assert sim.file_bytes(first_user, "/big/upload.bin") == data


def test_folder_creation_with_conflicts(client, first_user):
    url = f"/users/{first_user}/drive/root/children"
    created = client.send("POST", url, json={"name": "Restore 1", "folder": {}})
    assert created.status_code == 201 and created.json()["folder"]["childCount"] == 0
    clash = client.send("POST", url, json={"name": "Restore 1", "folder": {}})
    assert clash.status_code == 409
    renamed = client.send(
        "POST",
        url,
        json={"name": "Restore 1", "folder": {}, "@microsoft.graph.conflictBehavior": "rename"},
    )
    assert renamed.status_code == 201 and renamed.json()["name"] == "Restore 1 1"
    child = client.send(
        "POST",
        f"/users/{first_user}/drive/items/{created.json()['id']}/children",
        json={"name": "inner", "folder": {}},
    )
    assert child.json()["parentReference"]["id"] == created.json()["id"]


def test_uploads_need_a_write_permission(running, first_user):
    from conftest import GraphClient

    read_only = GraphClient(running.info, app_index=1)
    response = read_only.send("PUT", f"/users/{first_user}/drive/root:/x.txt:/content", data=b"x")
    assert response.status_code == 403


def raw_put(client, path, headers):
    """A PUT with hand-made headers and no body; the response status."""
    import http.client
    import ssl
    from urllib.parse import urlsplit

    url = urlsplit(client.url(path))
    context = ssl.create_default_context(cafile=client.info["ca_file"])
    connection = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=10)
    try:
        connection.putrequest("PUT", url.path + (f"?{url.query}" if url.query else ""))
        connection.putheader("Authorization", f"Bearer {client.token()}")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_simple_upload_over_250_mb_is_refused_before_its_body(client, first_user):
    path = f"/users/{first_user}/drive/root:/too-big.bin:/content"
    assert raw_put(client, path, {"Content-Length": str(250_000_001)}) == 413


def test_a_bad_content_length_is_400_not_a_dropped_connection(client, first_user):
    path = f"/users/{first_user}/drive/root:/bad-length.bin:/content"
    assert raw_put(client, path, {"Content-Length": "many"}) == 400


def test_simple_upload_by_parent_id_honours_conflict_behavior(sim, client, first_user):
    folder = sim.add_folder(first_user, "/by parent")
    sim.add_file(first_user, "/by parent/a.txt", content=b"first")
    base = f"/drives/{folder['drive_id']}/items/{folder['id']}:/a.txt:/content"
    failed = client.send("PUT", base + "?@microsoft.graph.conflictBehavior=fail", data=b"x" * 5000)
    assert failed.status_code == 409
    # the refused body was drained: the same connection carries the next request
    renamed = client.send("PUT", base + "?@microsoft.graph.conflictBehavior=rename", data=b"two")
    assert renamed.status_code == 201 and renamed.json()["name"] == "a 1.txt"
    assert sim.file_bytes(first_user, "/by parent/a.txt") == b"first"
