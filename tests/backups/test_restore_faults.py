"""Restores under Microsoft's faults (throttling, resets mid-fragment, lost answers, sessions
that vanish) and Kodo's own (a version removed or damaged, content that does not verify): the
restored bytes are always right, and nothing is marked restored unless Microsoft's quickXorHash
of the new item equals the backed-up one."""

import pytest

from backups.models import FileVersion, RestoreItem, RestoreJob
from backups.restore.plan import list_items
from backups.storage import store_for
from o365 import onedrive
from tests.backups.restore_helpers import (
    FRAGMENT,
    assert_same_content,
    files_under,
    restore,
    run,
    start,
)
from tests.factories import mirror_one


@pytest.fixture
def big_files(tenant):
    """A user with four files of 3 to 4 fragments (and one small one), backed up."""
    user = mirror_one(tenant, "faults")
    for n in range(4):
        tenant.sim.add_file(user.graph_id, f"/Media/clip-{n}.bin", size=3 * FRAGMENT + 1000 * n)
    tenant.sim.add_file(user.graph_id, "/Media/small.txt", content=b"small" * 10)
    tenant.backup(user)
    tenant.sim.reset_stats()
    return user


def assert_all_restored(tenant, user, job):
    assert job.status == RestoreJob.Status.SUCCEEDED, job.error
    landed = files_under(tenant, user, "/" + job.folder)
    kept = FileVersion.objects.current().filter(drive__directory_user=user, is_folder=False)
    assert len(landed) == len(kept) == job.files_restored
    for version in kept:
        assert_same_content(tenant, user, landed[version.path[1:]], version)


def test_throttled_uploads_wait_for_retry_after_and_succeed(tenant, big_files):
    tenant.sim.set_fault("fragment", "429", max_count=2, retry_after=0.3)
    tenant.sim.set_fault("upload", "429", max_count=2, retry_after=0.3)

    # one thread: with several, a request already on its way when another is throttled is
    # throttled too, which no client can avoid
    job = restore(tenant, big_files, threads=1)

    assert_all_restored(tenant, big_files, job)
    stats = tenant.sim.stats()
    assert stats["faults"]["fragment"]["429"] == 2 and stats["faults"]["upload"]["429"] == 2
    assert stats["throttle_penalties"] == 0  # nobody came back before Retry-After


@pytest.mark.parametrize("after_commit", [False, True])
def test_a_reset_mid_fragment_resumes_without_sending_the_file_again(
    tenant, big_files, after_commit
):
    # cut after 100 kB of the fragment, or after the fragment is taken (the answer is cut)
    cut = {"after_commit": True} if after_commit else {"after_bytes": 100_000}
    tenant.sim.set_fault("fragment", "reset", max_count=3, **cut)

    job = restore(tenant, big_files)

    assert_all_restored(tenant, big_files, job)
    stats = tenant.sim.stats()
    assert stats["faults"]["fragment"]["reset"] == 3
    # A cut fragment is sent again from where the session stands: at most the fragments the
    # resets cut, never a file. (A fragment taken whose answer was lost is sent again once and
    # refused with 416 unread, then the session says where to go on.)
    resent = stats["fragment_bytes_received"] - job.bytes_total
    assert (0 < resent <= 3 * FRAGMENT) if not after_commit else resent == 0
    assert job.bytes_total < job.bytes_uploaded <= job.bytes_total + 3 * FRAGMENT


def test_five_percent_of_uploads_throttled_or_unavailable(tenant, big_files):
    for n, kind in enumerate(("429", "503")):
        for endpoint in ("fragment", "upload"):
            tenant.sim.set_fault(endpoint, kind, rate=0.05, seed=7 + n, retry_after=0.05)
    for n in range(30):
        tenant.sim.add_file(big_files.graph_id, f"/Many/file-{n:02}.txt", size=1000 + 37 * n)
    tenant.sim.clear_faults()
    tenant.backup(big_files)
    for n, kind in enumerate(("429", "503")):
        for endpoint in ("fragment", "upload"):
            tenant.sim.set_fault(endpoint, kind, rate=0.05, seed=7 + n, retry_after=0.05)
    tenant.sim.reset_stats()

    job = restore(tenant, big_files)

    assert_all_restored(tenant, big_files, job)
    faults = tenant.sim.stats()["faults"]
    assert sum(sum(kinds.values()) for kinds in faults.values()) >= 3


def test_a_session_that_is_gone_is_started_again(tenant, big_files, monkeypatch):
    real_put = onedrive.OneDrive.put_fragment
    dropped = []

    def put_fragment(drive, url, data, start, total):
        if start == FRAGMENT and not dropped:  # the second fragment of the first file
            session_id = url.rsplit("/", 1)[1]
            tenant.running.drop_upload_session(session_id)
            dropped.append(url)
        return real_put(drive, url, data, start, total)

    monkeypatch.setattr(onedrive.OneDrive, "put_fragment", put_fragment)

    job = restore(tenant, big_files, threads=1)

    assert dropped
    assert_all_restored(tenant, big_files, job)
    # the file of the vanished session was sent again from its start: one fragment more
    assert tenant.sim.stats()["fragment_bytes_received"] == job.bytes_total + FRAGMENT


def _tamper(monkeypatch, times):
    """Microsoft reports another quickXorHash for the next `times` uploads that complete."""
    real_put = onedrive.OneDrive.put_fragment
    left = [times]

    def put_fragment(drive, url, data, start, total):
        answer = real_put(drive, url, data, start, total)
        if answer.item is not None and left[0] > 0:
            left[0] -= 1
            item = dict(
                answer.item, file={"hashes": {"quickXorHash": "AAAAwrongAAAAAAAAAAAAAAAAAA="}}
            )
            return onedrive.FragmentAnswer(item=item, created=answer.created)
        return answer

    monkeypatch.setattr(onedrive.OneDrive, "put_fragment", put_fragment)


def test_content_microsoft_reports_otherwise_is_uploaded_again(tenant, big_files, monkeypatch):
    _tamper(monkeypatch, 1)

    job = restore(
        tenant, big_files, what=RestoreJob.What.SELECTION, paths=["/Media/clip-0.bin"], threads=1
    )

    assert job.status == RestoreJob.Status.SUCCEEDED, job.error
    landed = files_under(tenant, big_files, "/" + job.folder)
    assert list(landed) == ["clip-0.bin"]  # the same item, given its content again
    version = FileVersion.objects.get(drive__directory_user=big_files, path="/Media/clip-0.bin")
    assert_same_content(tenant, big_files, landed["clip-0.bin"], version)
    assert job.bytes_uploaded == 2 * job.bytes_total


def test_content_that_never_verifies_fails_the_file_and_leaves_no_copy(
    tenant, big_files, monkeypatch
):
    _tamper(monkeypatch, 99)

    job = restore(
        tenant, big_files, what=RestoreJob.What.SELECTION, paths=["/Media/clip-0.bin"], threads=1
    )

    assert job.status == RestoreJob.Status.FAILED
    item = job.items.get(is_folder=False)
    assert item.status == RestoreItem.Status.FAILED
    assert "quickXorHash AAAAwrong" in item.message and "after 3 attempts" in item.message
    assert "Nothing could be restored" in job.error
    assert not files_under(tenant, big_files, "/" + job.folder)  # the wrong copy was deleted
    assert job.files_restored == 0 and job.files_failed == 1


def test_versions_removed_damaged_or_unreadable_fail_with_a_reason_and_the_rest_goes_on(
    tenant, big_files
):
    job = start(tenant, big_files)
    list_items(job, lambda: None)
    items = {i.source_path: i for i in job.items.select_related("version")}
    items["/Media/clip-0.bin"].version.delete()  # retention took it meanwhile
    FileVersion.objects.filter(pk=items["/Media/clip-1.bin"].version_id).update(
        damage=FileVersion.Damage.LOST
    )
    store_for(tenant.organization).delete_chunk(items["/Media/clip-2.bin"].version.chunk_ids[-1])

    job = run(job)

    assert job.status == RestoreJob.Status.PARTIAL
    messages = {i.source_path: i.message for i in job.items.filter(status="failed")}
    assert set(messages) == {"/Media/clip-0.bin", "/Media/clip-1.bin", "/Media/clip-2.bin"}
    assert "removed by retention" in messages["/Media/clip-0.bin"]
    assert "damaged" in messages["/Media/clip-1.bin"]
    assert "cannot be read from Kodo's store" in messages["/Media/clip-2.bin"]
    assert job.files_restored == 2 and job.files_failed == 3
    landed = files_under(tenant, big_files, "/" + job.folder)
    assert set(landed) == {"Media/clip-3.bin", "Media/small.txt"}
    assert not tenant.running.upload_sessions  # the abandoned session was deleted
