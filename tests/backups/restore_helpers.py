"""What the restore tests share: start a restore as the pages do and run it here, read the
target OneDrive from m365sim, and compare it byte for byte and by hash with Kodo's store."""

from backups.actions import do_run_restore, do_start_restore
from backups.models import FileVersion, RestoreJob
from backups.storage import iter_version_content
from backups.store import quickxorhash
from o365.graph import GraphClient
from o365.onedrive import OneDrive, user_drive_id

FRAGMENT = 320 * 1024  # the tests' fragment: a small file already needs several
FAST = {"backoff_base": 0.01, "max_backoff": 0.2}


def start(tenant, user=None, **options):
    """A restore of `user` (default the tenant's second user) started as the pages start it."""
    user = user or tenant.users[1]
    options.setdefault("run", None)
    options.setdefault("what", RestoreJob.What.DRIVE)
    return do_start_restore(source_user=user, **options)


def run(job, **options) -> RestoreJob:
    """Run a queued (or stale) restore here, as a worker would."""
    options.setdefault("client_options", FAST)
    options.setdefault("fragment_size", FRAGMENT)
    outcome = do_run_restore(job.pk, job.organization_id, **options)
    job.refresh_from_db()
    job.outcome = outcome
    return job


def restore(tenant, user=None, **options) -> RestoreJob:
    run_options = {k: options.pop(k) for k in ("threads", "client_options") if k in options}
    return run(start(tenant, user, **options), **run_options)


def files_under(tenant, user, folder: str) -> dict:
    """{path below `folder`: item info} of the live files in the simulator."""
    prefix = folder.rstrip("/") + "/"
    return {
        info["path"][len(prefix) :]: info
        for info in tenant.sim.list_items(user.graph_id)
        if not info["folder"] and info["path"].startswith(prefix)
    }


def folders_under(tenant, user, folder: str) -> set:
    prefix = folder.rstrip("/") + "/"
    return {
        info["path"][len(prefix) :]
        for info in tenant.sim.list_items(user.graph_id)
        if info["folder"] and info["path"].startswith(prefix)
    }


def assert_same_content(tenant, target_user, item_info, version: FileVersion):
    """The restored item holds exactly the version's bytes: compared byte for byte, and by the
    hash Microsoft reports."""
    restored = tenant.sim.file_bytes(target_user.graph_id, item_info["id"])
    kept = b"".join(iter_version_content(version))
    assert restored == kept, version.path
    assert item_info["size"] == version.size
    assert item_info["quickXorHash"] == version.quickxorhash == quickxorhash(restored)


def graph_item(tenant, user, item_id) -> dict:
    """The item as Graph shows it (fileSystemInfo included)."""
    with tenant.configuration.graph_client() as client:
        assert isinstance(client, GraphClient)
        return OneDrive(client, user_drive_id(client, user.graph_id)).item(item_id)
