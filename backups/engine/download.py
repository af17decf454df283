"""Downloading: files fetched in parallel, download URLs refreshed, broken transfers resumed with
Range, content verified against its size and quickXorHash."""

import logging
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

import requests
import urllib3

from backups import conf
from backups.engine.host import EngineMixin
from backups.engine.plan import RECORD_BATCH, Item, Skip
from backups.models import RunIssue
from backups.store import StreamResult
from o365.graph import (
    DownloadUrlExpired,
    GraphError,
    GraphUnavailable,
    NotFound,
    PermissionDenied,
    Throttled,
)
from o365.problems import describe

log = logging.getLogger(__name__)

BLOCK_SIZE = 1 << 20
MAX_RESUMES = 8  # Range resumes of one download attempt (resets, expired URLs)
QUEUED_PER_THREAD = 4  # downloads handed to the pool ahead, per thread
_BODY_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


class Stopped(Exception):
    """Ends a download in flight when the run stops (not a failure of the file)."""


class DownloadFailed(Exception):
    pass


@dataclass
class Outcome:
    item: Item
    path: str
    result: StreamResult | None = None
    skip: Skip | None = None
    error: str = ""
    attempts: int = 0


class Downloading(EngineMixin):
    """OneDriveBackup's downloads (uses self.client, self.store, self.threads, self.attempts,
    self._stopping, self._beat and self._record_outcomes)."""

    def _download_all(self, state, downloads, current) -> list[str]:
        """Download in `threads` threads; this thread records what they finish.

        Recording is a group commit: each transaction records every download that finished
        while the previous one was being written (at most RECORD_BATCH). With one fast download
        at a time that is one file per transaction, as before; when recording is the slower side
        (many threads, small files, a busy database) the batches grow instead of the downloads
        waiting for this thread. Each transaction first makes its batch's chunks durable (one
        ChunkStore.sync for the batch), and the window of queued downloads is refilled before
        that, so the threads have work while this one syncs and writes."""
        failed: list[str] = []
        if not downloads:
            return failed
        queue = iter(downloads)
        window = QUEUED_PER_THREAD * self.threads
        with ThreadPoolExecutor(self.threads, thread_name_prefix="download") as pool:
            pending: set[Future[Outcome]] = set()

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
                    done, _ = wait(
                        pending, timeout=conf.HEARTBEAT_SECONDS, return_when=FIRST_COMPLETED
                    )
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
                        self._record_outcomes(
                            state, finished[start : start + RECORD_BATCH], current
                        )
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
                error = describe(exc) if isinstance(exc, GraphError) else str(exc)
                log.info("Download of %s failed (attempt %d): %s", item.id, attempt, exc)
                if isinstance(exc, Throttled) and exc.retry_after:
                    time.sleep(min(exc.retry_after, 60))
                continue
            if result.size == item.size and result.quickxorhash == item.quickxorhash:
                return Outcome(item, path, result=result, attempts=attempt)
            error = (
                f"The downloaded content did not match: {result.size} bytes with "
                f"quickXorHash {result.quickxorhash}, expected {item.size} bytes with "
                f"{item.quickxorhash}."
            )
            log.warning("%s (item %s, attempt %d)", error, item.id, attempt)
        return Outcome(
            item, path, error=f"{error} (after {self.attempts} attempts)", attempts=self.attempts
        )

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
        return replace(
            fresh, parent_id=item.parent_id or fresh.parent_id, name=fresh.name or item.name
        )

    def _blocks(self, drive_id, item: Item) -> Iterator[bytes]:
        """The file's bytes in blocks, resuming with Range after resets and expired URLs."""
        received, resumes, url = 0, 0, item.download_url
        while received < item.size or (received == 0 and resumes == 0):
            headers = {"Range": f"bytes={received}-"} if received else None
            try:
                response = self.client.request(
                    "GET", url, stream=True, headers=headers, authenticated=False
                )
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
                            raise DownloadFailed(
                                f"The server resumed at byte {start}, not {received}."
                            )
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


def _content_range_start(header: str):
    try:
        return int(header.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None
