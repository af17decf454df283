"""Restore round trips against m365sim: what lands in OneDrive is compared byte for byte and by
hash with what Kodo kept, for every place a restore can go."""

import datetime as dt

import pytest

from backups.models import FileVersion, RestoreItem, RestoreJob
from organizations.models import AuditEvent
from tests.backups.restore_helpers import (
    FRAGMENT,
    assert_same_content,
    files_under,
    folders_under,
    graph_item,
    restore,
)
from tests.factories import mirror_one


def kept_files(user, run=None):
    versions = FileVersion.objects.filter(drive__directory_user=user, is_folder=False)
    versions = versions.files_as_of(run) if run else versions.current()
    return {v.path: v for v in versions}


def test_the_whole_onedrive_goes_to_a_new_folder_byte_for_byte(tenant, mailoutbox):
    user = tenant.users[1]
    tenant.backup(user)
    before = set(tenant.sim_files(user))

    job = restore(tenant, user)

    assert job.status == RestoreJob.Status.SUCCEEDED, job.error
    assert job.folder.startswith("Kodo Restore ") and job.where == RestoreJob.Where.NEW_FOLDER
    kept = kept_files(user)
    landed = files_under(tenant, user, "/" + job.folder)
    assert set(landed) == {path[1:] for path in kept}
    for path, version in kept.items():
        assert_same_content(tenant, user, landed[path[1:]], version)
    assert folders_under(tenant, user, "/" + job.folder) >= {
        v.path[1:] for v in FileVersion.objects.current().filter(is_folder=True)
    }
    # nothing existing was touched
    assert before <= set(tenant.sim_files(user))
    assert job.files_restored == job.files_total == len(kept)
    assert job.bytes_restored == job.bytes_total == sum(v.size for v in kept.values())
    assert job.bytes_uploaded >= job.bytes_total and job.files_failed == job.files_skipped == 0
    assert not RestoreItem.objects.filter(restore=job).exclude(status="restored").exists()
    assert not RestoreItem.objects.filter(restore=job, upload_session__isnull=False).exists()
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("restore_started") == 1 and actions.count("restore_finished") == 1
    assert len(mailoutbox) == 1 and "succeeded" in mailoutbox[0].subject


def test_a_multi_fragment_file_and_an_empty_file_keep_their_times(tenant, settings):
    user = mirror_one(tenant, "times")
    big = bytes(range(256)) * (FRAGMENT * 3 // 256) + b"tail" * 1000  # 3 fragments and a bit
    tenant.sim.add_file(user.graph_id, "/Big/video.bin", content=big)
    tenant.sim.add_file(user.graph_id, "/Big/empty.txt", content=b"")
    tenant.backup(user)
    versions = kept_files(user)
    assert versions["/Big/video.bin"].size == len(big) and versions["/Big/empty.txt"].size == 0

    job = restore(tenant, user)

    assert job.status == RestoreJob.Status.SUCCEEDED, job.error
    landed = files_under(tenant, user, "/" + job.folder)
    assert tenant.sim.file_bytes(user.graph_id, landed["Big/video.bin"]["id"]) == big
    assert tenant.sim.file_bytes(user.graph_id, landed["Big/empty.txt"]["id"]) == b""
    for path in ("Big/video.bin", "Big/empty.txt"):
        version = versions["/" + path]
        assert_same_content(tenant, user, landed[path], version)
        info = graph_item(tenant, user, landed[path]["id"])["fileSystemInfo"]
        assert _at(info["lastModifiedDateTime"]) == version.modified_datetime
        assert _at(info["createdDateTime"]) == version.created_datetime


def _at(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_selected_folder_goes_back_to_its_original_place_after_deletion(tenant):
    user = mirror_one(tenant, "original")
    for n in range(3):
        tenant.sim.add_file(user.graph_id, f"/Projects/Q3/report-{n}.txt", content=b"r%d" % n * 999)
    tenant.sim.add_folder(user.graph_id, "/Projects/Q3/Empty")
    tenant.sim.add_file(user.graph_id, "/Projects/keep.txt", content=b"stays")
    tenant.backup(user)
    folder_id = next(
        i["id"] for i in tenant.sim.list_items(user.graph_id) if i["path"] == "/Projects/Q3"
    )
    tenant.sim.delete_item(user.graph_id, folder_id)

    job = restore(
        tenant,
        user,
        what=RestoreJob.What.SELECTION,
        paths=["/Projects/Q3"],
        where=RestoreJob.Where.ORIGINAL,
    )

    assert job.status == RestoreJob.Status.SUCCEEDED, job.error
    landed = files_under(tenant, user, "/Projects")
    assert set(landed) == {"keep.txt", "Q3/report-0.txt", "Q3/report-1.txt", "Q3/report-2.txt"}
    for n in range(3):
        assert_same_content(
            tenant,
            user,
            landed[f"Q3/report-{n}.txt"],
            kept_files(user)[f"/Projects/Q3/report-{n}.txt"],
        )
    assert "Q3/Empty" in folders_under(tenant, user, "/Projects")  # empty folders too
    assert job.files_total == 3


def test_another_users_onedrive_in_another_folder(tenant):
    source, target = tenant.users[1], tenant.users[2]
    tenant.backup(source)

    job = restore(
        tenant,
        source,
        target_user=target,
        where=RestoreJob.Where.FOLDER,
        folder="Restored/From Kodo",
    )

    assert job.status == RestoreJob.Status.SUCCEEDED, job.error
    landed = files_under(tenant, target, "/Restored/From Kodo")
    kept = kept_files(source)
    assert set(landed) == {path[1:] for path in kept}
    for path, version in kept.items():
        assert_same_content(tenant, target, landed[path[1:]], version)
    assert not files_under(tenant, source, "/Restored")


def test_deleted_items_only(tenant):
    user = mirror_one(tenant, "deleted")
    for name in ("a.txt", "b.txt", "c.txt"):
        tenant.sim.add_file(user.graph_id, f"/Docs/{name}", content=name.encode() * 500)
    tenant.backup(user)
    gone = [i for i in tenant.sim.list_items(user.graph_id) if i["name"] in ("a.txt", "b.txt")]
    for info in gone:
        tenant.sim.delete_item(user.graph_id, info["id"])
    tenant.backup(user)

    job = restore(tenant, user, what=RestoreJob.What.DELETED, where=RestoreJob.Where.ORIGINAL)

    assert job.status == RestoreJob.Status.SUCCEEDED, job.error
    landed = files_under(tenant, user, "/Docs")
    assert set(landed) == {"a.txt", "b.txt", "c.txt"}
    assert {i.target_path for i in job.items.all()} == {"/Docs/a.txt", "/Docs/b.txt"}
    assert {i["id"] for i in gone}.isdisjoint(i["id"] for i in landed.values())  # new items
    assert tenant.sim.file_bytes(user.graph_id, landed["a.txt"]["id"]) == b"a.txt" * 500


def test_a_version_older_than_the_latest(tenant):
    user = mirror_one(tenant, "older")
    info = tenant.sim.add_file(user.graph_id, "/notes.txt", content=b"first words" * 300)
    tenant.backup(user)
    tenant.sim.modify_file(user.graph_id, info["id"], content=b"second words" * 400)
    tenant.backup(user)
    old = FileVersion.objects.get(
        drive__directory_user=user, path="/notes.txt", end_run__isnull=False
    )

    job = restore(
        tenant,
        user,
        what=RestoreJob.What.SELECTION,
        version_ids=[old.pk],
        where=RestoreJob.Where.FOLDER,
        folder="/Old",
    )

    assert job.status == RestoreJob.Status.SUCCEEDED, job.error
    landed = files_under(tenant, user, "/Old")
    assert tenant.sim.file_bytes(user.graph_id, landed["notes.txt"]["id"]) == b"first words" * 300
    assert_same_content(tenant, user, landed["notes.txt"], old)


@pytest.mark.parametrize(
    ("conflict", "expected_status", "names", "content"),
    [
        ("skip", "skipped", {"a.txt", "b.txt"}, b"changed"),
        ("replace", "restored", {"a.txt", "b.txt"}, b"original" * 100),
        ("rename", "restored", {"a.txt", "a 1.txt", "b.txt"}, b"changed"),
    ],
)
def test_each_conflict_policy(tenant, conflict, expected_status, names, content):
    user = mirror_one(tenant, f"conflict-{conflict}")
    a = tenant.sim.add_file(user.graph_id, "/Box/a.txt", content=b"original" * 100)
    tenant.sim.add_file(user.graph_id, "/Box/b.txt", content=b"bee" * 100)
    tenant.backup(user)
    tenant.sim.modify_file(user.graph_id, a["id"], content=b"changed")
    b = next(i for i in tenant.sim.list_items(user.graph_id) if i["name"] == "b.txt")
    tenant.sim.delete_item(user.graph_id, b["id"])
    tenant.sim.reset_stats()

    job = restore(
        tenant,
        user,
        what=RestoreJob.What.SELECTION,
        paths=["/Box"],
        where=RestoreJob.Where.ORIGINAL,
        conflict=conflict,
    )

    assert job.status == RestoreJob.Status.SUCCEEDED, job.error
    landed = files_under(tenant, user, "/Box")
    assert set(landed) == names
    assert tenant.sim.file_bytes(user.graph_id, a["id"]) == content  # the existing a.txt
    statuses = {i.target_path: (i.status, i.message) for i in job.items.filter(is_folder=False)}
    assert statuses["/Box/a.txt"][0] == expected_status
    assert statuses["/Box/b.txt"] == ("restored", "")  # deleted: restored as a new item
    if conflict == "skip":
        assert statuses["/Box/a.txt"][1] == "exists"
        assert job.files_skipped == 1 and job.bytes_uploaded == 300  # b.txt only
    if conflict == "rename":
        assert statuses["/Box/a.txt"][1] == 'restored as "a 1.txt"'
        assert tenant.sim.file_bytes(user.graph_id, landed["a 1.txt"]["id"]) == b"original" * 100
