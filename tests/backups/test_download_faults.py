"""Downloads against m365sim's fault injection: expired URLs, resets, corrupt bodies, throttling."""

from backups.models import BackupRun, FileVersion, RunIssue
from backups.storage import iter_version_content
from backups.store import quickxorhash
from tests.factories import mirror_one


def test_an_expired_download_url_is_refreshed_and_resumed_with_range(tenant):
    solo = mirror_one(tenant, "solo")
    size = 4_000_000
    item = tenant.sim.add_file(solo.graph_id, "/big.bin", size=size)
    # The first body breaks off after 2.5 MB; the resume is throttled past the URL's lifetime,
    # so it answers 401 and Kodo must get a fresh URL and continue with Range.
    tenant.sim.configure(download_url_lifetime=2)
    tenant.sim.set_fault("download", "truncate", max_count=1, after_bytes=2_500_000)
    tenant.sim.set_fault("download", "429", max_count=1, retry_after=2.5)
    tenant.sim.reset_stats()

    run = tenant.backup(solo, threads=1)

    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    stats = tenant.sim.stats()
    assert stats["status"].get("401") == 1 and stats["status"].get("206") == 1
    assert stats["downloads_by_item"] == {item["id"]: 2}
    assert stats["bytes_served"] < 1.5 * size  # resumed, not downloaded again from the start
    version = FileVersion.objects.get(item_id=item["id"])
    assert quickxorhash(b"".join(iter_version_content(version))) == item["quickXorHash"]


def test_a_reset_mid_body_resumes(tenant):
    tenant.sim.set_fault("download", "reset", rate=0.5, seed=3, after_bytes=1000)
    run = tenant.backup()

    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    assert tenant.sim.stats()["faults"]["download"]["reset"] >= 1
    assert FileVersion.objects.current().filter(is_folder=False).count() == len(tenant.sim_files())


def test_a_corrupt_body_is_retried_then_recorded_failed_never_backed_up(tenant):
    files = tenant.sim_files()
    tenant.sim.set_fault("download", "corrupt", corrupt_at=10)
    run = tenant.backup()

    nonempty = {p for p, i in files.items() if i["size"] > 10}
    assert run.status == BackupRun.Status.PARTIAL
    assert run.files_failed == len(nonempty)
    failed = RunIssue.objects.filter(run=run, kind=RunIssue.Kind.FAILED)
    assert set(failed.values_list("path", flat=True)) == nonempty
    assert set(failed.values_list("reason", flat=True)) == {RunIssue.Reason.VERIFY}
    assert not FileVersion.objects.filter(path__in=nonempty).exists()
    # three attempts each (the fault also fires, harmlessly, on empty files)
    assert tenant.sim.stats()["faults"]["download"]["corrupt"] == 3 * len(nonempty) + len(
        set(files) - nonempty
    )

    # Once the fault is gone the next run stores them, though they did not change.
    tenant.sim.clear_faults()
    again = tenant.backup()
    assert again.status == BackupRun.Status.SUCCEEDED, again.error
    assert again.files_downloaded == len(nonempty)
    assert set(
        FileVersion.objects.current().filter(is_folder=False).values_list("path", flat=True)
    ) == set(files)


def test_one_corrupt_body_is_retried_and_stored(tenant):
    tenant.sim.set_fault("download", "corrupt", max_count=1, corrupt_at=5)
    run = tenant.backup()

    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    assert run.files_failed == 0
    for version in FileVersion.objects.current().filter(is_folder=False):
        assert quickxorhash(b"".join(iter_version_content(version))) == version.quickxorhash


def test_under_throttling_resets_and_corruption_nothing_corrupt_is_recorded(tenant):
    sim = tenant.sim
    for endpoint in ("drive", "drive_delta", "item", "download"):
        sim.set_fault(endpoint, "429", rate=0.05, seed=1, retry_after=0.05)
        sim.set_fault(endpoint, "503", rate=0.05, seed=2, retry_after=None)
    sim.set_fault("download", "reset", rate=0.02, seed=3)
    sim.set_fault("download", "corrupt", rate=0.01, seed=4)
    sim.configure(delta_page_size=5)
    expected = {}
    for user in tenant.users[:3]:
        expected.update({i["id"]: i for i in sim.list_items(user.graph_id) if not i["folder"]})

    runs = [tenant.backup(user) for user in tenant.users[:3]]

    assert all(r.status in (BackupRun.Status.SUCCEEDED, BackupRun.Status.PARTIAL) for r in runs)
    failed = set(
        RunIssue.objects.filter(kind=RunIssue.Kind.FAILED).values_list("item_id", flat=True)
    )
    skipped = set(
        RunIssue.objects.filter(kind=RunIssue.Kind.SKIPPED).values_list("item_id", flat=True)
    )
    stored = {v.item_id: v for v in FileVersion.objects.filter(is_folder=False)}
    assert set(stored) | failed | skipped == set(expected)
    assert not set(stored) & failed
    for item_id, version in stored.items():
        content = b"".join(iter_version_content(version))
        assert (len(content), quickxorhash(content)) == (
            expected[item_id]["size"],
            expected[item_id]["quickXorHash"],
        )
