import time

from m365sim import quickxorhash


def final_state(values):
    """Delta semantics: the last occurrence of an id wins."""
    state = {}
    for value in values:
        state[value["id"]] = value
    return state


def test_users_pages_with_select_and_top(sim, client):
    users, pages, _ = client.collect(
        "/users?$select=id,displayName,accountEnabled,assignedLicenses&$top=3"
    )
    assert pages == 3
    assert sorted(u["id"] for u in users) == sorted(u["id"] for u in sim.list_users())
    assert set(users[0]) == {"id", "displayName", "accountEnabled", "assignedLicenses"}
    plain = client.get("/users").json()["value"][0]
    assert "accountEnabled" not in plain and "assignedLicenses" not in plain and "mail" in plain
    assert client.get("/users?$top=1000").status_code == 400


def test_users_delta_reports_changes_and_removals(sim, client):
    users, pages, delta_link = client.collect(
        "/users/delta?$select=id,displayName,userPrincipalName"
    )
    assert len(users) == 8 and pages == 3
    ids = [u["id"] for u in users]
    added = sim.add_user(upn="new.person", display_name="New Person")
    sim.rename_user(ids[1], display_name="Renamed Person")
    sim.delete_user(ids[2])
    sim.delete_user(ids[3], permanent=True)
    changes, _, next_link = client.collect(delta_link)
    by_id = final_state(changes)
    assert set(by_id) == {added["id"], ids[1], ids[2], ids[3]}
    assert by_id[ids[1]]["displayName"] == "Renamed Person"
    assert by_id[ids[2]]["@removed"] == {"reason": "changed"}
    assert by_id[ids[3]]["@removed"] == {"reason": "deleted"}
    assert client.collect(next_link)[0] == []
    assert len(client.collect("/users")[0]) == 7


def test_users_without_onedrive_get_the_field_variants(sim, client):
    answers = set()
    for user in sim.list_users():
        response = client.get(f"/users/{user['id']}/drive")
        if user["drive_id"] is None:
            answers.add((response.status_code, response.json()["error"]["code"]))
        else:
            assert response.json()["id"] == user["drive_id"]
    assert answers == {(404, "ResourceNotFound"), (400, "BadRequest"), (404, "UnknownError")}
    upn = sim.list_users()[0]["userPrincipalName"]
    assert client.get(f"/users/{upn}/drive").json()["driveType"] == "business"


def test_drive_delta_gives_every_item_once_in_its_final_state(sim, client, first_user):
    drive_id = sim.user_info(first_user)["drive_id"]
    values, pages, delta_link = client.collect(f"/drives/{drive_id}/root/delta")
    assert pages >= 2
    ids = [v["id"] for v in values]
    assert len(ids) > len(set(ids)), "an item should be repeated across pages"
    seen, child_first = set(), False
    for value in values:
        parent = value.get("parentReference", {}).get("id")
        if parent and parent not in seen and "root" not in value:
            child_first = True
        seen.add(value["id"])
    assert child_first, "some child should come before its parent"
    state = final_state(values)
    expected = {i["id"]: i for i in sim.list_items(first_user)}
    root = [v for v in state.values() if "root" in v]
    assert len(root) == 1
    assert set(state) - {root[0]["id"]} == set(expected)
    for item_id, item in expected.items():
        assert state[item_id]["name"] == item["name"]
        assert state[item_id]["size"] == item["size"]
        if "quickXorHash" in item:
            assert state[item_id]["file"]["hashes"]["quickXorHash"] == item["quickXorHash"]
    assert "path" not in values[1]["parentReference"]
    assert client.collect(delta_link)[0] == []


def test_drive_delta_reports_adds_renames_moves_and_deletes(sim, client, first_user):
    drive_id = sim.user_info(first_user)["drive_id"]
    _, _, delta_link = client.collect(f"/drives/{drive_id}/root/delta")
    files = [i for i in sim.list_items(first_user) if not i["folder"] and not i["package"]]
    folder = next(i for i in sim.list_items(first_user) if i["folder"])
    added = sim.add_file(first_user, "/New/notes.txt", size=1234)
    modified = sim.modify_file(first_user, files[0]["id"], size=99)
    renamed = sim.rename_item(first_user, files[1]["id"], "renamed.docx")
    moved = sim.move_item(first_user, files[2]["id"], "/New")
    doomed = [i for i in sim.list_items(first_user) if i["path"].startswith(folder["path"] + "/")]
    sim.delete_item(first_user, folder["id"])
    changes, _, _ = client.collect(delta_link)
    state = final_state(changes)
    assert state[added["id"]]["name"] == "notes.txt"
    assert state[modified["id"]]["size"] == 99
    assert state[modified["id"]]["cTag"] != files[0]["id"]
    assert state[renamed["id"]]["name"] == "renamed.docx"
    assert state[moved["id"]]["parentReference"]["id"] == added["parent_id"]
    for gone in doomed + [folder]:
        if gone["id"] in (moved["id"], renamed["id"], modified["id"]):
            continue
        assert state[gone["id"]]["deleted"] == {"state": "deleted"}
        assert "name" not in state[gone["id"]]


def test_token_latest_returns_no_items_and_sees_later_changes(sim, client, first_user):
    drive_id = sim.user_info(first_user)["drive_id"]
    body = client.get(f"/drives/{drive_id}/root/delta?token=latest").json()
    assert body["value"] == [] and "@odata.deltaLink" in body
    added = sim.add_file(first_user, "/later.txt", size=10)
    changes, _, _ = client.collect(body["@odata.deltaLink"])
    assert [c["id"] for c in changes if "file" in c] == [added["id"]]


def test_changes_during_paging_converge(sim, client, first_user):
    drive_id = sim.user_info(first_user)["drive_id"]
    first = client.get(f"/drives/{drive_id}/root/delta").json()
    files = [i for i in sim.list_items(first_user) if not i["folder"] and not i["package"]]
    sim.rename_item(first_user, files[-1]["id"], "late rename.txt")
    sim.delete_item(first_user, files[0]["id"])
    rest, _, delta_link = client.collect(first["@odata.nextLink"])
    more, _, _ = client.collect(delta_link)
    state = final_state(first["value"] + rest + more)
    live = {k: v for k, v in state.items() if "deleted" not in v and "root" not in v}
    assert set(live) == {i["id"] for i in sim.list_items(first_user)}
    assert live[files[-1]["id"]]["name"] == "late rename.txt"


def test_an_expired_delta_token_answers_410(sim, client, first_user):
    drive_id = sim.user_info(first_user)["drive_id"]
    _, _, delta_link = client.collect(f"/drives/{drive_id}/root/delta")
    sim.expire_delta_tokens(first_user)
    response = client.get(delta_link)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "resyncRequired"


def test_downloaded_bytes_match_the_quickxorhash_in_metadata(sim, client, first_user):
    drive_id = sim.user_info(first_user)["drive_id"]
    values, _, _ = client.collect(f"/drives/{drive_id}/root/delta")
    files = [v for v in final_state(values).values() if "file" in v and "malware" not in v]
    assert files
    for item in files:
        redirect = client.get(
            f"/drives/{drive_id}/items/{item['id']}/content", allow_redirects=False
        )
        assert redirect.status_code == 302
        assert redirect.headers["Location"].startswith(client.info["download_base"])
        body = client.session.get(redirect.headers["Location"]).content
        assert len(body) == item["size"]
        assert quickxorhash(body) == item["file"]["hashes"]["quickXorHash"]
    stats = sim.stats()
    assert stats["downloads"] == len(files)
    assert stats["bytes_served"] == sum(f["size"] for f in files)
    assert all(count == 1 for count in stats["downloads_by_item"].values())


def test_download_urls_support_ranges(sim, client, first_user):
    item = sim.add_file(first_user, "/ranged.bin", size=10_000)
    url = client.get(f"/users/{first_user}/drive/items/{item['id']}").json()[
        "@microsoft.graph.downloadUrl"
    ]
    whole = client.session.get(url).content
    part = client.session.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole[100:200]
    assert part.headers["Content-Range"] == "bytes 100-199/10000"
    tail = client.session.get(url, headers={"Range": "bytes=9990-"})
    assert tail.status_code == 206 and tail.content == whole[9990:]
    suffix = client.session.get(url, headers={"Range": "bytes=-5"})
    assert suffix.content == whole[-5:]
    beyond = client.session.get(url, headers={"Range": "bytes=10000-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == "bytes */10000"
    assert "Authorization" not in part.request.headers


def test_download_urls_expire(sim, client, first_user):
    sim.configure(download_url_lifetime=0.3)
    item = sim.add_file(first_user, "/short.txt", size=100)
    url = client.get(f"/users/{first_user}/drive/items/{item['id']}").json()[
        "@microsoft.graph.downloadUrl"
    ]
    assert client.session.get(url).status_code == 200
    deadline = time.monotonic() + 5
    while client.session.get(url).status_code == 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.session.get(url).status_code == 401


def test_malware_is_403_and_onenote_is_503(sim, client, first_user):
    items = {i["name"]: i for i in sim.list_items(first_user)}
    malware, notebook = items["Invoice (flagged).exe"], items["Team Notebook"]
    meta = client.get(f"/users/{first_user}/drive/items/{malware['id']}").json()
    assert "malware" in meta and "@microsoft.graph.downloadUrl" not in meta
    assert client.get(f"/users/{first_user}/drive/items/{malware['id']}/content").status_code == 403
    meta = client.get(f"/users/{first_user}/drive/items/{notebook['id']}").json()
    assert meta["package"] == {"type": "oneNote"} and "file" not in meta
    assert (
        client.get(f"/users/{first_user}/drive/items/{notebook['id']}/content").status_code == 503
    )


def test_item_metadata_has_paths_and_etags(sim, client, first_user):
    item = sim.add_file(first_user, "/Deep/Er/file.md", size=5)
    meta = client.get(f"/users/{first_user}/drive/root:/Deep/Er/file.md").json()
    assert meta["id"] == item["id"]
    assert meta["parentReference"]["path"].endswith("/root:/Deep/Er")
    etag, ctag = meta["eTag"], meta["cTag"]
    sim.rename_item(first_user, item["id"], "file2.md")
    renamed = client.get(f"/users/{first_user}/drive/items/{item['id']}").json()
    assert renamed["eTag"] != etag and renamed["cTag"] == ctag
    assert (
        client.get(
            f"/users/{first_user}/drive/items/01NOTANITEMIDATALL0000000000000000"
        ).status_code
        == 404
    )


def test_a_copied_file_serves_the_same_bytes_under_a_new_item(sim, client, first_user):
    other = sim.tenants[0].users[1].id
    generated = sim.add_file(first_user, "/big/generated.bin", size=3_000_000)
    uploaded = sim.add_file(first_user, "/small/given.txt", content=b"given bytes")

    copies = [
        client.admin(
            "copy_file", user=other, path=f"/copies/{n}", from_user=first_user, item=source["id"]
        )
        for n, source in enumerate([generated, uploaded])
    ]

    for source, copy in zip([generated, uploaded], copies, strict=True):
        assert copy["id"] != source["id"] and copy["drive_id"] != source["drive_id"]
        assert copy["quickXorHash"] == source["quickXorHash"]
        assert sim.file_bytes(other, copy["id"]) == sim.file_bytes(first_user, source["id"])
    body = client.get(f"/users/{other}/drive/items/{copies[0]['id']}/content").content
    assert quickxorhash(body) == generated["quickXorHash"] and len(body) == 3_000_000
