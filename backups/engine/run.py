"""The run: OneDriveBackup takes one claimed BackupRun from the delta to its end, proving its
claim (heartbeat) as it goes; close_run finishes a run this worker holds."""

import threading
import time
from collections.abc import Callable

from django.utils import timezone

from backups import conf
from backups.engine.download import Downloading
from backups.engine.plan import Planning, versions_to_compare
from backups.engine.record import Recording
from backups.models import BackupRun, DriveState
from backups.store import ChunkStore
from kodo import jobs
from o365.graph import NotFound
from o365.models import DirectoryUser

# Another worker took the run over / an admin canceled it: stop without writing (kodo.jobs).
LostClaim = jobs.LostClaim
RunCanceled = jobs.JobCanceled


class OneDriveBackup(Planning, Recording, Downloading):
    """Runs one claimed BackupRun to its end. `client` is a thread-safe GraphClient."""

    def __init__(
        self,
        run: BackupRun,
        client,
        store: ChunkStore,
        *,
        threads: int | None = None,
        attempts: int | None = None,
        progress: Callable[[BackupRun], None] | None = None,
    ):
        self.run = run
        self.client = client
        self.store = store
        self.threads = threads or conf.download_threads()
        self.attempts = attempts or conf.download_attempts()
        self.progress = progress or (lambda run: None)
        self.user: DirectoryUser = run.directory_user
        self._last_beat = time.monotonic()
        self._stopping = threading.Event()
        self._heal_ids: set[str] = set()  # items whose current version uses a damaged chunk

    def execute(self) -> BackupRun:
        run = self.run
        self._set_phase("Finding the OneDrive")
        try:
            drive_id = self._drive_id()
        except NotFound as error:
            self._record_no_onedrive(error)
            return run
        state, _ = DriveState.objects.get_or_create(
            directory_user=self.user,
            drive_id=drive_id,
            defaults={"organization_id": run.organization_id},
        )
        self._set_phase("Reading changes")
        listing, delta_link, full = self._enumerate(state)
        self._add_retries(state, listing)
        self._add_damaged(state, listing)
        if full != run.full_enumeration:
            run.full_enumeration = full
            run.save(update_fields=["full_enumeration"])
        root_id = state.root_item_id or next(
            (item.id for item in listing.values() if item.is_root), ""
        )
        current = versions_to_compare(state, listing, root_id, full)
        plan = self._plan(listing, current, root_id, full)
        files = [i for i in listing.values() if not i.is_folder and not i.deleted and not i.is_root]
        # A run taken over from a lost worker keeps what that worker downloaded and recorded:
        # the plan holds only what is left, so the totals add the two.
        seen = {
            "files_seen": len(files),
            "bytes_seen": sum(i.size for i in files),
            "files_to_download": run.files_downloaded + len(plan.downloads),
            "bytes_to_download": run.bytes_downloaded + sum(i.size for i, _ in plan.downloads),
        }
        BackupRun.objects.filter(pk=run.pk).update(**seen)
        for name, value in seen.items():  # only this worker writes the run (it holds the claim)
            setattr(run, name, value)
        self._record_changes(state, plan, current)
        if plan.downloads:
            done = (
                f" ({run.files_downloaded} stored before the worker was lost)"
                if run.files_downloaded
                else ""
            )
            self._set_phase(f"Downloading {len(plan.downloads)} files{done}")
        failed_ids = self._download_all(state, plan.downloads, current)
        self._finish(state, delta_link, root_id, failed_ids)
        return run

    def _drive_id(self) -> str:
        user = self.user
        drive = self.client.get(f"/users/{user.graph_id}/drive", params={"$select": "id"})
        if user.drive_id != drive["id"] or user.onedrive != DirectoryUser.OneDrive.PROVISIONED:
            user.drive_id = drive["id"]
            user.onedrive = DirectoryUser.OneDrive.PROVISIONED
            user.onedrive_checked_at = timezone.now()
            user.save(update_fields=["drive_id", "onedrive", "onedrive_checked_at", "updated_at"])
        return drive["id"]

    def _beat(self, force=False):
        """Prove the claim is still ours (and say we are alive)."""
        now = time.monotonic()
        if not force and now - self._last_beat < conf.HEARTBEAT_SECONDS:
            return
        self._last_beat = now
        self.run.beat()  # raises RunCanceled / LostClaim when the claim is no longer ours

    def _set_phase(self, phase):
        self.run.phase = phase
        BackupRun.objects.filter(
            pk=self.run.pk, claim_token=self.run.claim_token, status=BackupRun.Status.RUNNING
        ).update(phase=phase)
        self.progress(self.run)

    def _close(self, status, error):
        close_run(self.run, status, error)


def close_run(run: BackupRun, status, error="") -> bool:
    """Finish a run this worker holds. A run it no longer holds (canceled, or taken over by
    another worker) is left as it is: False."""
    return run.finish(status, error)
