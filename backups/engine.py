"""The OneDrive backup engine: one run of one user's drive.

    delta (from the saved cursor) -> the drive's tree -> what changed -> record renames, moves and
    deletions -> download changed content in parallel, streaming: quickXorHash, chunk, compress,
    encrypt, store -> verify size and hash -> record the version -> save cursor.

Crash safety: a verified file version is recorded only after its chunks are stored, tied to the
run, together with the other downloads that finished meanwhile (one transaction); the delta cursor
moves only when the run completes. A run that dies is continued (same run) by a redelivered task:
the delta is read again from the old cursor, what this run already recorded compares as unchanged,
so nothing is downloaded twice (only the few files not yet recorded when it died).
"""

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

import requests
import urllib3
from django.db import transaction
from django.utils import timezone

from backups import conf
from backups.models import BackupRun, DriveState, FileVersion, RunIssue
from backups.storage import clear_damage
from backups.store import ChunkStore, StreamResult
from o365.graph import (
    DownloadUrlExpired,
    GraphError,
    GraphUnavailable,
    NotFound,
    PermissionDenied,
    ResyncRequired,
    Throttled,
)
from o365.models import DirectoryUser

log = logging.getLogger(__name__)

BLOCK_SIZE = 1 << 20
MAX_RESUMES = 8  # Range resumes of one download attempt (resets, expired URLs)
RECORD_BATCH = 500
QUEUED_PER_THREAD = 4  # downloads handed to the pool ahead, per thread
_BODY_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


class LostClaim(Exception):
    """Another worker took this run over (ours was presumed dead): stop without writing."""


class RunCanceled(LostClaim):
    """An admin canceled the run: stop without writing (the cancel already closed the row)."""


class Stopped(Exception):
    """Ends a download in flight when the run stops (not a failure of the file)."""


class Skip(Exception):
    def __init__(self, reason, message=""):
        super().__init__(message or reason)
        self.reason = reason
        self.message = message


class DownloadFailed(Exception):
    pass


@dataclass
class Item:
    """The fields of a driveItem the engine uses (delta pages are dropped after parsing)."""

    id: str
    parent_id: str = ""
    name: str = ""
    is_root: bool = False
    is_folder: bool = False
    deleted: bool = False
    malware: bool = False
    package: bool = False
    size: int = 0
    quickxorhash: str = ""
    ctag: str = ""
    etag: str = ""
    mime_type: str = ""
    created: dt.datetime | None = None
    modified: dt.datetime | None = None
    download_url: str = ""

    @classmethod
    def parse(cls, raw: dict) -> "Item":
        file = raw.get("file") or {}
        info = raw.get("fileSystemInfo") or {}
        return cls(
            id=raw["id"],
            parent_id=(raw.get("parentReference") or {}).get("id") or "",
            name=raw.get("name") or "",
            is_root="root" in raw,
            is_folder="folder" in raw,
            deleted="deleted" in raw,
            malware="malware" in raw,
            package="package" in raw,
            size=int(raw.get("size") or 0),
            quickxorhash=((file.get("hashes") or {}).get("quickXorHash") or ""),
            ctag=raw.get("cTag") or "",
            etag=raw.get("eTag") or "",
            mime_type=file.get("mimeType") or "",
            created=_parse_time(info.get("createdDateTime") or raw.get("createdDateTime")),
            modified=_parse_time(info.get("lastModifiedDateTime")
                                 or raw.get("lastModifiedDateTime")),
            download_url=raw.get("@microsoft.graph.downloadUrl") or "",
        )

    @classmethod
    def from_version(cls, version: FileVersion) -> "Item":
        return cls(id=version.item_id, parent_id=version.parent_id, name=version.name,
                   is_folder=version.is_folder, size=version.size,
                   quickxorhash=version.quickxorhash, ctag=version.ctag, etag=version.etag,
                   mime_type=version.mime_type, created=version.created_datetime,
                   modified=version.modified_datetime)


def _parse_time(text):
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class Outcome:
    item: Item
    path: str
    result: StreamResult | None = None
    skip: Skip | None = None
    error: str = ""
    attempts: int = 0


@dataclass
class Plan:
    metadata: list = field(default_factory=list)  # (Item, path): new version, same content
    downloads: list = field(default_factory=list)  # (Item, path)
    deletions: list = field(default_factory=list)  # FileVersion to end
    skips: list = field(default_factory=list)  # (Item, path, Skip)


class OneDriveBackup:
    """Runs one claimed BackupRun to its end. `client` is a thread-safe GraphClient."""

    def __init__(self, run: BackupRun, client, store: ChunkStore, *, threads: int | None = None,
                 attempts: int | None = None, progress: Callable[[BackupRun], None] | None = None):
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

    # ----- the run ---------------------------------------------------------------------

    def execute(self) -> BackupRun:
        run = self.run
        self._set_phase("Finding the OneDrive")
        try:
            drive_id = self._drive_id()
        except NotFound as error:
            self._record_no_onedrive(error)
            return run
        state, _ = DriveState.objects.get_or_create(
            directory_user=self.user, drive_id=drive_id,
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
            (item.id for item in listing.values() if item.is_root), "")
        current = versions_to_compare(state, listing, root_id, full)
        plan = self._plan(listing, current, root_id, full)
        files = [i for i in listing.values() if not i.is_folder and not i.deleted and not i.is_root]
        # A run taken over from a lost worker keeps what that worker downloaded and recorded:
        # the plan holds only what is left, so the totals add the two.
        seen = {"files_seen": len(files), "bytes_seen": sum(i.size for i in files),
                "files_to_download": run.files_downloaded + len(plan.downloads),
                "bytes_to_download": run.bytes_downloaded + sum(i.size for i, _ in plan.downloads)}
        BackupRun.objects.filter(pk=run.pk).update(**seen)
        for name, value in seen.items():  # only this worker writes the run (it holds the claim)
            setattr(run, name, value)
        self._record_changes(state, plan, current)
        if plan.downloads:
            done = (f" ({run.files_downloaded} stored before the worker was lost)"
                    if run.files_downloaded else "")
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
            user.save(update_fields=["drive_id", "onedrive", "updated_at"])
        return drive["id"]

    def _record_no_onedrive(self, error):
        run, user = self.run, self.user
        with transaction.atomic():
            self._beat(force=True)
            if user.onedrive != DirectoryUser.OneDrive.MISSING:
                user.onedrive = DirectoryUser.OneDrive.MISSING
                user.save(update_fields=["onedrive", "updated_at"])
            RunIssue.objects.create(run=run, kind=RunIssue.Kind.SKIPPED,
                                    reason=RunIssue.Reason.NO_ONEDRIVE,
                                    message=error.message or str(error))
            self._close(BackupRun.Status.SKIPPED, "The user has no OneDrive.")

    # ----- enumeration -----------------------------------------------------------------

    def _enumerate(self, state: DriveState):
        """(items by id, last one wins; the new delta link; whether it was a full enumeration)."""
        start = state.delta_link or f"/drives/{state.drive_id}/root/delta"
        full = not state.delta_link
        try:
            return (*self._read_delta(start), full)
        except ResyncRequired:
            log.info("Delta token of %s expired: full enumeration", state)
            return (*self._read_delta(f"/drives/{state.drive_id}/root/delta"), True)

    def _read_delta(self, url):
        items, delta_link = {}, ""
        for page in self.client.iter_pages(url):
            for raw in page.get("value", []):
                item = Item.parse(raw)
                items.pop(item.id, None)  # keep the latest occurrence last in order
                items[item.id] = item
            delta_link = page.get("@odata.deltaLink") or delta_link
            self._beat()
        return items, delta_link

    def _add_retries(self, state, listing):
        """Files a previous run could not store come back even when they did not change."""
        self._add_items(state, listing, state.retry_item_ids)

    def _add_damaged(self, state, listing):
        """Files whose current version uses a damaged chunk (found by a verification) are
        downloaded again: the current OneDrive content heals the chunk."""
        self._heal_ids = set(FileVersion.objects.current().filter(
            drive=state, damage=FileVersion.Damage.DAMAGED).values_list("item_id", flat=True))
        self._add_items(state, listing, sorted(self._heal_ids))

    def _add_items(self, state, listing, item_ids):
        for item_id in item_ids:
            if item_id in listing:
                continue
            try:
                listing[item_id] = Item.parse(
                    self.client.get(f"/drives/{state.drive_id}/items/{item_id}"))
            except NotFound:
                listing[item_id] = Item(id=item_id, deleted=True)

    # ----- planning ----------------------------------------------------------------------

    def _plan(self, listing, current, root_id, full) -> Plan:
        plan = Plan()
        # The tree after this delta: what we knew, with the changes applied.
        tree = {} if full else {item_id: Item.from_version(v) for item_id, v in current.items()}
        for item in listing.values():
            if item.is_root or item.id == root_id:
                continue
            if item.deleted:
                tree.pop(item.id, None)
            else:
                tree[item.id] = item
        paths = _paths(tree, root_id)
        for item_id, version in current.items():
            if item_id not in paths:
                plan.deletions.append(version)
        for item_id, path in paths.items():
            item = tree[item_id]
            version = current.get(item_id)
            if item.malware or item.package:
                if item_id in listing:
                    reason = (RunIssue.Reason.MALWARE if item.malware else RunIssue.Reason.ONENOTE)
                    plan.skips.append((item, path, Skip(reason)))
                continue
            if version is None:
                (plan.metadata if item.is_folder else plan.downloads).append((item, path))
            elif not item.is_folder and (_content_changed(version, item)
                                         or item_id in self._heal_ids):
                plan.downloads.append((item, path))
            elif (version.path != path or version.name != item.name or version.etag != item.etag
                  or version.parent_id != item.parent_id):
                plan.metadata.append((item, path))
        return plan

    # ----- recording ---------------------------------------------------------------------

    def _record_changes(self, state, plan, current):
        run = self.run
        for start in range(0, len(plan.deletions), RECORD_BATCH):
            batch = plan.deletions[start:start + RECORD_BATCH]
            with transaction.atomic():
                self._beat(force=True)
                FileVersion.objects.filter(pk__in=[v.pk for v in batch],
                                           end_run__isnull=True).update(end_run=run, deleted=True)
                run.add(files_deleted=sum(1 for v in batch if not v.is_folder))
        for start in range(0, len(plan.metadata), RECORD_BATCH):
            batch = plan.metadata[start:start + RECORD_BATCH]
            with transaction.atomic():
                self._beat(force=True)
                old = [current[item.id].pk for item, _ in batch if item.id in current]
                FileVersion.objects.filter(pk__in=old, end_run__isnull=True).update(end_run=run)
                FileVersion.objects.bulk_create([
                    self._version(state, item, path, chunks=current[item.id].chunks
                                  if item.id in current else [])
                    for item, path in batch
                ])
                run.add(files_moved=sum(1 for item, _ in batch
                                        if item.id in current and not item.is_folder))
        if plan.skips:
            with transaction.atomic():
                self._beat(force=True)
                RunIssue.objects.bulk_create([
                    RunIssue(run=run, kind=RunIssue.Kind.SKIPPED, reason=skip.reason,
                             item_id=item.id, path=path, message=skip.message)
                    for item, path, skip in plan.skips
                ])
                run.add(files_skipped=len(plan.skips))

    def _version(self, state, item: Item, path: str, chunks) -> FileVersion:
        return FileVersion(
            organization_id=self.run.organization_id, drive=state, item_id=item.id,
            parent_id=item.parent_id, path=path, name=item.name, is_folder=item.is_folder,
            size=0 if item.is_folder else item.size, quickxorhash=item.quickxorhash,
            mime_type=item.mime_type, created_datetime=item.created,
            modified_datetime=item.modified, etag=item.etag, ctag=item.ctag, chunks=chunks,
            first_run=self.run,
        )

    def _record_outcomes(self, state, outcomes: list[Outcome], current):
        """Record finished downloads in one transaction. Every outcome's chunks are stored
        already; a crash before this commits only means downloading these few files again."""
        run = self.run
        stored = [o for o in outcomes if o.result is not None]
        deleted_ids = [o.item.id for o in outcomes
                       if o.skip is not None and o.skip.reason == RunIssue.Reason.DELETED]
        issues, counts = [], {}
        for outcome in outcomes:
            if outcome.result is not None:
                continue
            if outcome.skip is not None:
                issues.append(RunIssue(run=run, kind=RunIssue.Kind.SKIPPED,
                                       reason=outcome.skip.reason, item_id=outcome.item.id,
                                       path=outcome.path, message=outcome.skip.message))
                counts["files_skipped"] = counts.get("files_skipped", 0) + 1
            else:
                reason = (RunIssue.Reason.VERIFY if "did not match" in outcome.error
                          else RunIssue.Reason.DOWNLOAD)
                issues.append(RunIssue(run=run, kind=RunIssue.Kind.FAILED, reason=reason,
                                       item_id=outcome.item.id, path=outcome.path,
                                       message=outcome.error[:2000]))
                counts["files_failed"] = counts.get("files_failed", 0) + 1
        healed = self.store.take_healed()  # damaged chunks written again: sound after sync
        if stored or healed:
            # The chunks' renames become durable here, for the whole batch at once, before any
            # row points to them (write_stream was told to defer its directory fsyncs).
            self.store.sync()
        if stored:
            stored = self._secure_chunks(stored, issues, counts)
        versions = [self._version(state, o.item, o.path,
                                  [[ref.id, ref.size] for ref in o.result.chunks])
                    for o in stored]
        if stored:
            counts.update(files_downloaded=len(stored),
                          bytes_downloaded=sum(o.result.size for o in stored),
                          bytes_stored=sum(o.result.new_bytes_stored for o in stored))
        with transaction.atomic():
            self._beat(force=True)
            if stored:
                FileVersion.objects.filter(drive=state, item_id__in=[o.item.id for o in stored],
                                           end_run__isnull=True).update(end_run=run)
                for version in FileVersion.objects.bulk_create(versions):
                    current[version.item_id] = version
            if deleted_ids:
                ended = FileVersion.objects.filter(drive=state, item_id__in=deleted_ids,
                                                   end_run__isnull=True).update(
                    end_run=run, deleted=True)
                if ended:
                    counts["files_deleted"] = ended
            if issues:
                RunIssue.objects.bulk_create(issues)
            if counts:
                run.add(**counts)
        if healed:
            clear_damage(run.organization, healed)
        self.progress(run)

    def _secure_chunks(self, stored: list[Outcome], issues, counts) -> list[Outcome]:
        """Make the chunks these versions reuse safe from prune before recording them: a chunk
        prune marked unreferenced is un-marked, one it already set aside is put back. An outcome
        whose chunk is gone for good is failed instead (the next run downloads it again)."""
        from backups.prune import secure_chunks

        chunk_ids = {ref.id for o in stored for ref in o.result.chunks}
        lost = secure_chunks(self.run.organization, self.store, chunk_ids)
        if not lost:
            return stored
        kept = []
        for outcome in stored:
            if any(ref.id in lost for ref in outcome.result.chunks):
                issues.append(RunIssue(
                    run=self.run, kind=RunIssue.Kind.FAILED, reason=RunIssue.Reason.OTHER,
                    item_id=outcome.item.id, path=outcome.path,
                    message="A chunk of the file left the store while it was being backed up; "
                            "the next backup downloads it again."))
                counts["files_failed"] = counts.get("files_failed", 0) + 1
            else:
                kept.append(outcome)
        return kept

    # ----- downloads ---------------------------------------------------------------------

    def _download_all(self, state, downloads, current) -> list[str]:
        """Download in `threads` threads; this thread records what they finish.

        Recording is a group commit: each transaction records every download that finished
        while the previous one was being written (at most RECORD_BATCH). With one fast download
        at a time that is one file per transaction, as before; when recording is the slower side
        (many threads, small files, a busy database) the batches grow instead of the downloads
        waiting for this thread. Each transaction first makes its batch's chunks durable (one
        ChunkStore.sync for the batch), and the window of queued downloads is refilled before
        that, so the threads have work while this one syncs and writes."""
        failed = []
        if not downloads:
            return failed
        queue = iter(downloads)
        window = QUEUED_PER_THREAD * self.threads
        with ThreadPoolExecutor(self.threads, thread_name_prefix="download") as pool:
            pending = set()

            def refill():
                while len(pending) < window:
                    job = next(queue, None)
                    if job is None:
                        break
                    pending.add(pool.submit(self._fetch, state.drive_id, *job))

            try:
                while True:
                    refill()
                    if not pending:
                        break
                    done, _ = wait(pending, timeout=conf.HEARTBEAT_SECONDS,
                                   return_when=FIRST_COMPLETED)
                    pending.difference_update(done)
                    if not done:
                        self._beat()
                        continue
                    finished = []
                    for future in done:
                        outcome = future.result()
                        if outcome.result is None and outcome.skip is None:
                            failed.append(outcome.item.id)
                        finished.append(outcome)
                    refill()
                    for start in range(0, len(finished), RECORD_BATCH):
                        self._record_outcomes(state, finished[start:start + RECORD_BATCH],
                                              current)
            except BaseException:
                self._stopping.set()  # downloads in flight end at their next block
                for future in pending:
                    future.cancel()
                raise
        return failed

    def _fetch(self, drive_id, item: Item, path: str) -> Outcome:
        """Download, store and verify one file (in a worker thread; no database access)."""
        error = ""
        for attempt in range(1, self.attempts + 1):
            try:
                if attempt > 1 or not item.download_url:
                    item = self._refreshed(drive_id, item)
                result = self.store.write_stream(self._blocks(drive_id, item), defer_sync=True)
            except Skip as skip:
                return Outcome(item, path, skip=skip, attempts=attempt)
            except (GraphError, DownloadFailed) as exc:
                error = str(exc)
                log.info("Download of %s failed (attempt %d): %s", item.id, attempt, error)
                if isinstance(exc, Throttled) and exc.retry_after:
                    time.sleep(min(exc.retry_after, 60))
                continue
            if result.size == item.size and result.quickxorhash == item.quickxorhash:
                return Outcome(item, path, result=result, attempts=attempt)
            error = (f"The downloaded content did not match: {result.size} bytes with "
                     f"quickXorHash {result.quickxorhash}, expected {item.size} bytes with "
                     f"{item.quickxorhash}.")
            log.warning("%s (item %s, attempt %d)", error, item.id, attempt)
        return Outcome(item, path, error=f"{error} (after {self.attempts} attempts)",
                       attempts=self.attempts)

    def _refreshed(self, drive_id, item: Item) -> Item:
        """The item as Graph describes it now, with a fresh download URL."""
        try:
            raw = self.client.get(f"/drives/{drive_id}/items/{item.id}")
        except NotFound:
            raise Skip(RunIssue.Reason.DELETED) from None
        fresh = Item.parse(raw)
        if fresh.deleted:
            raise Skip(RunIssue.Reason.DELETED)
        if fresh.malware:
            raise Skip(RunIssue.Reason.MALWARE)
        if fresh.package:
            raise Skip(RunIssue.Reason.ONENOTE)
        # Keep the place from the delta: the tree was computed from it.
        return replace(fresh, parent_id=item.parent_id or fresh.parent_id,
                       name=fresh.name or item.name)

    def _blocks(self, drive_id, item: Item) -> Iterator[bytes]:
        """The file's bytes in blocks, resuming with Range after resets and expired URLs."""
        received, resumes, url = 0, 0, item.download_url
        while received < item.size or (received == 0 and resumes == 0):
            headers = {"Range": f"bytes={received}-"} if received else None
            try:
                response = self.client.request("GET", url, stream=True, headers=headers,
                                               authenticated=False)
            except DownloadUrlExpired:
                resumes += 1
                if resumes > MAX_RESUMES:
                    raise DownloadFailed("The download URL kept expiring.") from None
                url = self._refreshed_url(drive_id, item)
                continue
            except NotFound:
                raise Skip(RunIssue.Reason.DELETED) from None
            except PermissionDenied as exc:
                raise Skip(RunIssue.Reason.MALWARE, exc.message or "") from None
            except (Throttled, GraphUnavailable) as exc:
                if item.package or exc.status == 503 and "onenote" in (exc.message or "").lower():
                    raise Skip(RunIssue.Reason.ONENOTE, exc.message or "") from None
                raise
            with response:
                skip = 0
                if received:
                    if response.status_code == 206:
                        start = _content_range_start(response.headers.get("Content-Range", ""))
                        if start != received:
                            raise DownloadFailed(f"The server resumed at byte {start}, not "
                                                 f"{received}.")
                    else:
                        skip = received  # Range ignored: the whole body again
                try:
                    for block in response.iter_content(BLOCK_SIZE):
                        if self._stopping.is_set():
                            raise Stopped
                        if skip:
                            if len(block) <= skip:
                                skip -= len(block)
                                continue
                            block, skip = block[skip:], 0
                        received += len(block)
                        yield block
                except _BODY_ERRORS as exc:
                    resumes += 1
                    if resumes > MAX_RESUMES:
                        raise DownloadFailed(f"The download kept breaking off ({exc}).") from None
                    log.info("Download of %s broke off at byte %d; resuming", item.id, received)
                    continue
            if received < item.size:
                # A body shorter than announced without an error: resume from where it stopped.
                resumes += 1
                if resumes > MAX_RESUMES:
                    raise DownloadFailed("The download kept ending early.")
            else:
                return

    def _refreshed_url(self, drive_id, item):
        fresh = self._refreshed(drive_id, item)
        if fresh.ctag != item.ctag or fresh.quickxorhash != item.quickxorhash:
            raise DownloadFailed("The file changed during the download.")
        if not fresh.download_url:
            raise DownloadFailed("Graph gave no download URL for the file.")
        return fresh.download_url

    # ----- claim, heartbeat and the end -------------------------------------------------

    def _beat(self, force=False):
        """Prove the claim is still ours (and say we are alive)."""
        now = time.monotonic()
        if not force and now - self._last_beat < conf.HEARTBEAT_SECONDS:
            return
        self._last_beat = now
        alive = BackupRun.objects.filter(
            pk=self.run.pk, claim_token=self.run.claim_token, status=BackupRun.Status.RUNNING,
        ).update(heartbeat_at=timezone.now())
        if not alive:
            status = BackupRun.objects.filter(pk=self.run.pk).values_list("status",
                                                                          flat=True).first()
            if status == BackupRun.Status.CANCELED:
                raise RunCanceled(f"Run {self.run.pk} was canceled.")
            raise LostClaim(f"Run {self.run.pk} is no longer claimed by this worker.")

    def _set_phase(self, phase):
        self.run.phase = phase
        BackupRun.objects.filter(pk=self.run.pk, claim_token=self.run.claim_token,
                                 status=BackupRun.Status.RUNNING).update(phase=phase)
        self.progress(self.run)

    def _finish(self, state, delta_link, root_id, failed_ids):
        run = self.run
        with transaction.atomic():
            self._beat(force=True)
            state.delta_link = delta_link or state.delta_link
            state.root_item_id = root_id or state.root_item_id
            state.retry_item_ids = sorted(set(failed_ids))
            state.last_run = run
            state.save(update_fields=["delta_link", "root_item_id", "retry_item_ids", "last_run",
                                      "updated_at"])
            self._report_lost_versions(state)
            run.refresh_from_db()
            status = BackupRun.Status.PARTIAL if run.files_failed else BackupRun.Status.SUCCEEDED
            self._close(status, "")

    def _report_lost_versions(self, state):
        """Older versions still using a damaged chunk after this run downloaded the current
        content again cannot be restored: name them on the run (once: they are marked lost)."""
        lost = list(FileVersion.objects.filter(
            drive=state, damage=FileVersion.Damage.DAMAGED, end_run__isnull=False,
        ).order_by("path", "pk").values_list("pk", "path"))
        if not lost:
            return
        FileVersion.objects.filter(pk__in=[pk for pk, _ in lost]).update(
            damage=FileVersion.Damage.LOST)
        self.run.lost_versions = [*self.run.lost_versions,
                                  *({"path": path, "version": pk} for pk, path in lost)]
        BackupRun.objects.filter(pk=self.run.pk).update(lost_versions=self.run.lost_versions)

    def _close(self, status, error):
        close_run(self.run, status, error)


def close_run(run: BackupRun, status, error="") -> bool:
    """Finish a run this worker holds. A run it no longer holds (canceled, or taken over by
    another worker) is left as it is: False."""
    fields = {"status": status, "error": error[:5000], "finished_at": timezone.now(),
              "active_user": None, "phase": ""}
    closed = BackupRun.objects.filter(
        pk=run.pk, claim_token=run.claim_token, status=BackupRun.Status.RUNNING,
    ).update(**fields)
    if closed:
        for name, value in fields.items():
            setattr(run, name, value)
    return bool(closed)


def _content_changed(version: FileVersion, item: Item) -> bool:
    if item.ctag and version.ctag:
        if item.ctag != version.ctag:
            return True
    return item.quickxorhash != version.quickxorhash or item.size != version.size


def _content_range_start(header: str):
    try:
        return int(header.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def versions_to_compare(state: DriveState, listing: dict, root_id: str, full: bool) -> dict:
    """item id -> current FileVersion, for every item the plan must look at.

    A full enumeration compares the whole drive. A delta only needs the listed items, the
    folders leading to them (paths are rebuilt from parent ids) and, under a listed folder that
    was renamed, moved or deleted, everything it held (their paths change or they are gone).
    Every version loaded comes with all its ancestors, so no loaded item looks orphaned: a
    drive of a million files with no changes loads nothing."""
    current = FileVersion.objects.current().filter(drive=state)
    if full:
        return {version.item_id: version for version in current}
    listed = [item for item in listing.values() if not item.is_root and item.id != root_id]
    versions = _versions_where(current, "item_id__in",
                               {item.id for item in listed} | {i.parent_id for i in listed})
    moved = sorted(folder.path + "/" for item in listed
                   if (folder := versions.get(item.id)) is not None and folder.is_folder
                   and (item.deleted or item.name != folder.name
                        or item.parent_id != folder.parent_id))
    outermost = []  # a deleted tree lists every folder in it: one query for the top one
    for prefix in moved:  # sorted: what starts with a prefix follows it
        if not outermost or not prefix.startswith(outermost[-1]):
            outermost.append(prefix)
    for prefix in outermost:
        versions.update((v.item_id, v) for v in current.filter(path__startswith=prefix)
                        if v.path.startswith(prefix))  # SQLite's LIKE ignores case
    ancestors = {path[:end] for path in (v.path for v in versions.values())
                 for end in _separator_positions(path)}
    versions.update(_versions_where(current, "path__in", ancestors - {""}))
    return versions


def _versions_where(current, lookup: str, values: set) -> dict:
    found, values = {}, sorted(v for v in values if v)
    for start in range(0, len(values), RECORD_BATCH):
        found.update((v.item_id, v) for v in current.filter(
            **{lookup: values[start:start + RECORD_BATCH]}))
    return found


def _separator_positions(path: str) -> Iterator[int]:
    position = path.find("/", 1)
    while position != -1:
        yield position
        position = path.find("/", position + 1)


def _paths(tree: dict, root_id: str) -> dict:
    """item id -> full path, for every item whose parents lead to the root. Children may have
    been listed before their parents; orphans (a parent deleted or unknown) get no path."""
    paths = {}

    def resolve(item_id):
        chain = []
        while item_id not in paths:
            if item_id == root_id or not item_id:
                base = ""
                break
            item = tree.get(item_id)
            if item is None or len(chain) > len(tree):
                for link in chain:
                    paths[link] = None
                return None
            chain.append(item_id)
            item_id = item.parent_id
        else:
            base = paths[item_id]
            if base is None:
                for link in chain:
                    paths[link] = None
                return None
        for link in reversed(chain):
            base = f"{base}/{tree[link].name}"
            paths[link] = base
        return base

    for item_id in tree:
        resolve(item_id)
    return {item_id: path for item_id, path in paths.items() if path is not None}
