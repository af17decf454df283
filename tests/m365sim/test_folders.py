"""New folders (POST children) with Graph's conflictBehavior rules, and deletes."""

import time

import pytest


@pytest.fixture
def parent(sim, first_user):
    """(children URL, path) of an empty folder in the first user's OneDrive."""
    info = sim.add_folder(first_user, f"/Folders {time.monotonic_ns()}")
    return f"/drives/{info['drive_id']}/items/{info['id']}/children", info["path"]


def new_folder(client, url, name, behavior=None, **extra):
    body = {"name": name, "folder": {}, **extra}
    if behavior:
        body["@microsoft.graph.conflictBehavior"] = behavior
    return client.send("POST", url, json=body)


def test_replace_on_an_existing_folder_returns_it(sim, client, first_user, parent):
    url, path = parent
    created = new_folder(client, url, "Kodo Restore", "replace")
    assert created.status_code == 201
    sim.add_file(first_user, f"{path}/Kodo Restore/inside.txt", content=b"kept")
    again = new_folder(client, url, "Kodo Restore", "replace")
    assert again.status_code in (200, 201)
    assert again.json()["id"] == created.json()["id"]
    assert sim.file_bytes(first_user, f"{path}/Kodo Restore/inside.txt") == b"kept"


def test_replace_when_a_file_has_the_name_answers_409(sim, client, first_user, parent):
    url, path = parent
    sim.add_file(first_user, f"{path}/Reports", content=b"a file")
    response = new_folder(client, url, "Reports", "replace")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "nameAlreadyExists"
    assert sim.file_bytes(first_user, f"{path}/Reports") == b"a file"


def test_fail_gives_409_and_rename_renames(client, parent):
    url, _ = parent
    assert new_folder(client, url, "My Folder").status_code == 201
    failed = new_folder(client, url, "My Folder", "fail")
    assert failed.status_code == 409 and failed.json()["error"]["code"] == "nameAlreadyExists"
    names = [new_folder(client, url, "My Folder", "rename").json()["name"] for _ in range(2)]
    assert names == ["My Folder 1", "My Folder 2"]


def test_a_new_folder_keeps_the_given_file_system_info(client, parent):
    url, _ = parent
    times = {
        "createdDateTime": "2018-01-02T03:04:05Z",
        "lastModifiedDateTime": "2018-06-07T08:09:10Z",
    }
    response = new_folder(client, url, "Old", fileSystemInfo=times)
    assert response.status_code == 201 and response.json()["fileSystemInfo"] == times


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"name": "x"},
        {"name": "a:b", "folder": {}},
        {"name": "", "folder": {}},
        {"name": "x", "folder": "yes"},
    ],
)
def test_a_bad_folder_request_is_400(client, parent, body):
    url, _ = parent
    assert client.send("POST", url, json=body).status_code == 400


def test_deleting_an_item_answers_204_and_it_is_gone(sim, client, first_user, parent):
    _, path = parent
    item = sim.add_file(first_user, f"{path}/gone.txt", content=b"bye")
    url = f"/drives/{item['drive_id']}/items/{item['id']}"
    assert client.send("DELETE", url).status_code == 204
    assert client.get(url).status_code == 404
    assert client.send("DELETE", url).status_code == 404
    assert sim.get_item(first_user, item["id"])["deleted"]
