"""Upload sessions held to Graph's documented rules (driveitem-createuploadsession)."""

import datetime
import os
import time

import pytest
from conftest import FRAGMENT, GraphClient

from m365sim import quickxorhash


@pytest.fixture
def folder(sim, first_user):
    """(drive id, id of an empty folder) in the first user's OneDrive."""
    info = sim.add_folder(first_user, f"/Restore {time.monotonic_ns()}")
    return info["drive_id"], info["id"]


def session_path(folder, name):
    drive_id, parent_id = folder
    return f"/drives/{drive_id}/items/{parent_id}:/{name}:/createUploadSession"


def new_session(client, folder, name="file.bin", **item):
    response = client.create_session(session_path(folder, name), **item)
    assert response.status_code == 200, response.text
    return response.json()


def status(client, session):
    response = client.session.get(session["uploadUrl"])
    assert response.status_code == 200, response.text
    return response.json()["nextExpectedRanges"]


def error_code(response):
    return response.json()["error"]["code"]


def test_a_fragment_that_is_not_a_multiple_of_320_kib_is_refused_unless_last(client, folder):
    data = os.urandom(FRAGMENT * 2 + 777)
    session = new_session(client, folder)
    odd = client.put_fragment(session["uploadUrl"], data[:100_000], 0, len(data))
    assert odd.status_code == 400 and error_code(odd) == "invalidRequest"
    assert status(client, session) == ["0-"]
    first = client.put_fragment(session["uploadUrl"], data[:FRAGMENT], 0, len(data))
    assert first.status_code == 202
    last = client.put_fragment(session["uploadUrl"], data[FRAGMENT:], FRAGMENT, len(data))
    assert last.status_code == 201, last.text
    assert last.json()["file"]["hashes"]["quickXorHash"] == quickxorhash(data)


def test_a_fragment_of_60_mib_or_more_is_refused(client, folder):
    fragment = bytes(60 * 1024 * 1024)  # a multiple of 320 KiB, but not below 60 MiB
    session = new_session(client, folder)
    response = client.put_fragment(session["uploadUrl"], fragment, 0, 2 * len(fragment))
    assert response.status_code == 413
    assert status(client, session) == ["0-"]


def test_an_authorization_header_on_the_upload_url_gets_401(client, folder):
    data = os.urandom(1000)
    session = new_session(client, folder)
    response = client.put_fragment(
        session["uploadUrl"], data, 0, len(data), Authorization=f"Bearer {client.token()}"
    )
    assert response.status_code == 401
    assert status(client, session) == ["0-"]
    assert client.put_fragment(session["uploadUrl"], data, 0, len(data)).status_code == 201


def test_overlapping_and_out_of_order_fragments_get_416(client, folder):
    data = os.urandom(FRAGMENT * 3)
    session = new_session(client, folder)
    url = session["uploadUrl"]
    assert client.put_fragment(url, data[:FRAGMENT], 0, len(data)).status_code == 202
    again = client.put_fragment(url, data[:FRAGMENT], 0, len(data))
    assert again.status_code == 416 and error_code(again) == "invalidRange"
    gap = client.put_fragment(url, data[2 * FRAGMENT :], 2 * FRAGMENT, len(data))
    assert gap.status_code == 416
    assert status(client, session) == [f"{FRAGMENT}-"]


@pytest.mark.parametrize(
    "content_range",
    [
        None,
        "bytes 0-999/*",
        "bytes 0-999",
        "0-999/1000",
        "bytes 0-998/1000",
        "bytes 5-1004/1000",
        "bytes x-y/z",
    ],
)
def test_a_missing_or_invalid_content_range_is_refused(client, folder, content_range):
    session = new_session(client, folder)
    headers = {} if content_range is None else {"Content-Range": content_range}
    response = client.session.put(session["uploadUrl"], data=os.urandom(1000), headers=headers)
    assert response.status_code == 400, response.text
    assert status(client, session) == ["0-"]


def test_a_fragment_that_changes_the_total_size_is_refused(client, folder):
    data = os.urandom(FRAGMENT * 2)
    session = new_session(client, folder)
    first = client.put_fragment(session["uploadUrl"], data[:FRAGMENT], 0, len(data))
    assert first.status_code == 202
    other = client.put_fragment(session["uploadUrl"], data[FRAGMENT:], FRAGMENT, len(data) + 1)
    assert other.status_code == 400 and "total" in other.json()["error"]["message"]


def test_a_session_expires_and_then_answers_404(sim, client, folder):
    sim.configure(upload_session_lifetime=0.3)
    session = new_session(client, folder)
    deadline = time.monotonic() + 10
    while client.session.get(session["uploadUrl"]).status_code == 200:
        assert time.monotonic() < deadline, "the upload session never expired"
        time.sleep(0.05)
    assert client.session.get(session["uploadUrl"]).status_code == 404
    late = client.put_fragment(session["uploadUrl"], b"x", 0, 1)
    assert late.status_code == 404


def test_each_fragment_extends_the_session(sim, client, folder):
    sim.configure(upload_session_lifetime=60)
    session = new_session(client, folder)
    created = datetime.datetime.fromisoformat(session["expirationDateTime"])
    sim.configure(upload_session_lifetime=7200)
    data = os.urandom(FRAGMENT * 2)
    response = client.put_fragment(session["uploadUrl"], data[:FRAGMENT], 0, len(data))
    assert response.status_code == 202
    extended = datetime.datetime.fromisoformat(response.json()["expirationDateTime"])
    assert extended - created > datetime.timedelta(hours=1)


def test_get_reports_next_expected_ranges_and_delete_cancels(client, folder):
    data = os.urandom(FRAGMENT * 2)
    session = new_session(client, folder)
    url = session["uploadUrl"]
    assert client.put_fragment(url, data[:FRAGMENT], 0, len(data)).status_code == 202
    assert status(client, session) == [f"{FRAGMENT}-"]
    assert client.session.delete(url).status_code == 204
    assert client.session.get(url).status_code == 404
    assert client.put_fragment(url, data[FRAGMENT:], FRAGMENT, len(data)).status_code == 404


def test_a_same_named_file_created_meanwhile_gives_409_on_the_last_fragment(
    sim, client, folder, first_user
):
    data = os.urandom(FRAGMENT + 10)
    session = new_session(
        client, folder, "clash.txt", **{"@microsoft.graph.conflictBehavior": "fail"}
    )
    first = client.put_fragment(session["uploadUrl"], data[:FRAGMENT], 0, len(data))
    assert first.status_code == 202
    parent_path = sim.get_item(first_user, folder[1])["path"]
    sim.add_file(first_user, f"{parent_path}/clash.txt", content=b"someone else's")
    last = client.put_fragment(session["uploadUrl"], data[FRAGMENT:], FRAGMENT, len(data))
    assert last.status_code == 409 and error_code(last) == "nameAlreadyExists"
    assert sim.file_bytes(first_user, f"{parent_path}/clash.txt") == b"someone else's"
    assert status(client, session) == []  # kept until it expires, as Graph keeps it
    assert client.session.delete(session["uploadUrl"]).status_code == 204


def test_conflict_behavior_is_applied_on_completion(sim, client, folder, first_user):
    parent_path = sim.get_item(first_user, folder[1])["path"]
    old = sim.add_file(first_user, f"{parent_path}/report.txt", content=b"old")
    sim.add_folder(first_user, f"{parent_path}/Photos")

    no_behavior = client.create_session(session_path(folder, "report.txt"))
    assert no_behavior.status_code == 409  # the documented default is fail
    over_folder = client.create_session(
        session_path(folder, "Photos"), **{"@microsoft.graph.conflictBehavior": "replace"}
    )
    assert over_folder.status_code == 409
    assert sim.get_item(first_user, f"{parent_path}/Photos")["folder"]

    replace = new_session(
        client, folder, "report.txt", **{"@microsoft.graph.conflictBehavior": "replace"}
    )
    replaced = client.upload(replace["uploadUrl"], b"newer")
    assert replaced.status_code == 200 and replaced.json()["id"] == old["id"]
    assert sim.file_bytes(first_user, f"{parent_path}/report.txt") == b"newer"

    rename = new_session(
        client, folder, "report.txt", **{"@microsoft.graph.conflictBehavior": "rename"}
    )
    renamed = client.upload(rename["uploadUrl"], b"kept both")
    assert renamed.status_code == 201 and renamed.json()["name"] == "report 1.txt"


def test_file_system_info_is_applied_and_the_new_item_reports_its_hash(
    sim, client, folder, first_user
):
    drive_id, parent_id = folder
    _, _, delta_link = client.collect(f"/drives/{drive_id}/root/delta")
    data = os.urandom(FRAGMENT * 2 + 5)
    times = {
        "createdDateTime": "2019-03-04T05:06:07Z",
        "lastModifiedDateTime": "2021-08-09T10:11:12Z",
    }
    session = new_session(
        client,
        folder,
        "kept times.bin",
        fileSystemInfo=times,
        **{"@microsoft.graph.conflictBehavior": "fail"},
    )
    done = client.upload(session["uploadUrl"], data)
    assert done.status_code == 201, done.text
    item = done.json()
    assert item["size"] == len(data) and item["name"] == "kept times.bin"
    assert item["file"]["hashes"]["quickXorHash"] == quickxorhash(data)
    assert item["fileSystemInfo"] == times
    assert item["createdDateTime"] > "2024"  # the server's own time stays the upload's

    listed = client.get(f"/drives/{drive_id}/items/{parent_id}/children").json()["value"]
    assert [
        (i["id"], i["file"]["hashes"]["quickXorHash"], i["fileSystemInfo"]) for i in listed
    ] == [(item["id"], quickxorhash(data), times)]
    changes, _, _ = client.collect(delta_link)
    seen = {i["id"]: i for i in changes}
    assert seen[item["id"]]["file"]["hashes"]["quickXorHash"] == quickxorhash(data)
    assert seen[item["id"]]["fileSystemInfo"] == times
    assert sim.file_bytes(first_user, item["id"]) == data


def test_an_invalid_file_system_info_is_refused(client, folder):
    response = client.create_session(
        session_path(folder, "a.bin"), fileSystemInfo={"lastModifiedDateTime": "yesterday"}
    )
    assert response.status_code == 400


def test_an_existing_file_gets_new_content_by_id(sim, client, first_user):
    old = sim.add_file(first_user, "/by id.bin", content=b"old bytes")
    session = client.create_session(
        f"/users/{first_user}/drive/items/{old['id']}/createUploadSession"
    )
    assert session.status_code == 200, session.text
    data = os.urandom(FRAGMENT + 1)
    done = client.upload(session.json()["uploadUrl"], data)
    assert done.status_code == 200 and done.json()["id"] == old["id"]
    assert sim.file_bytes(first_user, old["id"]) == data


def test_a_session_over_the_quota_answers_507(client, folder):
    response = client.create_session(session_path(folder, "huge.bin"), fileSize=1 << 50)
    assert response.status_code == 507


def test_a_read_only_app_cannot_write(sim, running, first_user, folder):
    app = running.info["tenants"][0]["apps"][0]
    sim.set_app_roles(app["client_id"], ["User.Read.All", "Files.Read.All", "Sites.Read.All"])
    reader = GraphClient(running.info)
    drive_id, parent_id = folder
    attempts = [
        reader.create_session(session_path(folder, "x.bin")),
        reader.send(
            "POST",
            f"/drives/{drive_id}/items/{parent_id}/children",
            json={"name": "new", "folder": {}},
        ),
        reader.send("PUT", f"/drives/{drive_id}/items/{parent_id}:/x.txt:/content", data=b"x"),
        reader.send("DELETE", f"/drives/{drive_id}/items/{parent_id}"),
    ]
    assert [(r.status_code, error_code(r)) for r in attempts] == [(403, "accessDenied")] * 4
    assert reader.get(f"/drives/{drive_id}/items/{parent_id}").status_code == 200
    sim.set_app_roles(app["client_id"], ["User.Read.All", "Sites.ReadWrite.All"])
    writer = GraphClient(running.info)
    assert writer.create_session(session_path(folder, "x.bin")).status_code == 200
