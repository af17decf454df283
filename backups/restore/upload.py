"""One file from the store to the target OneDrive, in a worker thread (no database here: what
must be saved goes to the run's main thread as an event).

    [saved session? resume from nextExpectedRanges] else [Skip: a child of that name exists?
    -> skipped "exists", nothing sent] -> createUploadSession (conflictBehavior, name,
    fileSystemInfo) -> its URL saved (the main thread commits it while the first fragment
    goes; the second waits for it) -> fragments in order from the store -> Microsoft's answer
    -> verified: its quickXorHash and
    size equal the backed-up version's, else the same item is given the content again, up to
    KODO_RESTORE_UPLOAD_ATTEMPTS, then the file fails with the reason.

A 416 (the session holds other bytes, e.g. a fragment whose answer was lost) asks the session
where to go on; a 404 (the session is gone: expired, or it completed but its answer was lost)
first looks whether the file is there with the right hash, else starts a new session. A file
Graph cannot take (empty) is a simple upload followed by a PATCH of its times."""

import bisect
import datetime as dt
import io
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from backups.restore.content import VersionContent
from backups.store import ChunkStore, StoreError
from o365.graph import GraphError, PermissionDenied, Throttled
from o365.onedrive import (
    NameTaken,
    OneDrive,
    RangeNotExpected,
    SessionGone,
    UploadSession,
    item_hash,
)

log = logging.getLogger(__name__)

BEHAVIORS = {"skip": "fail", "replace": "replace", "rename": "rename"}
MAX_SESSION_RESTARTS = 3  # sessions gone (404) in one attempt before the attempt fails
MAX_RANGE_ASKS = 8  # 416 answers in one attempt before it fails
HASH_CHECKS = 3  # GETs of the new item when Microsoft's answer lacked its hash


class Stopped(Exception):
    """The run stops (canceled, or taken over by another worker): not a failure of the file."""


class Exists(Exception):
    """Skip policy: an item of that name is there."""


class WholeRestoreBlocked(Exception):
    """A failure no other file would escape (the app may not write, the OneDrive is full)."""


@dataclass
class FileTask:
    """What a worker thread needs of one RestoreItem (read by the main thread)."""

    pk: int
    parent_id: str
    name: str
    size: int
    quickxorhash: str
    chunks: list
    created: dt.datetime | None = None
    modified: dt.datetime | None = None
    saved_session: str = ""  # the URL of an upload session a lost worker left
    # Skip policy: look for an item of that name first (not in a folder this worker created:
    # nothing can be there, and createUploadSession's "fail" still says so if something is)
    check_exists: bool = True


@dataclass
class _Open:
    """The upload session of the file being restored (its URL; "" when there is none) and,
    until the main thread has committed it, the event that says it has."""

    url: str = ""
    saving: "SessionOpened | None" = None
    unreported: int = 0  # bytes sent that no Progress told (the last fragment's: the outcome does)


@dataclass
class ItemOutcome:
    pk: int
    status: str  # RestoreItem.Status value
    message: str = ""
    new_item_id: str = ""
    size: int = 0
    is_folder: bool = False
    sent: int = 0  # bytes sent to Microsoft that no Progress event counted


# ----- what a thread tells the main thread ----------------------------------------------------


@dataclass
class SessionOpened:
    pk: int
    session: UploadSession
    saved: threading.Event = field(default_factory=threading.Event)


@dataclass
class Progress:
    pk: int
    bytes_done: int  # what the session holds now
    sent: int  # bytes sent since the last Progress (retries included)


@dataclass
class StopSignal:
    """Why the threads must stop: `cancel` deletes their sessions (nobody resumes them), a lost
    claim leaves them for the worker that took the job over."""

    event: threading.Event = field(default_factory=threading.Event)
    cancel: bool = False

    def set(self, *, cancel: bool) -> None:
        self.cancel = cancel
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


class _CountedBody(io.RawIOBase):
    """A fragment as a file for requests and urllib3: the views of the chunks it is made of,
    never joined (each read() gives the rest of one part: one sendall each, no copy), counting
    what is read in `sent` (a fragment sent again after a reset counts twice, as it went)."""

    def __init__(self, parts: list[memoryview]):
        super().__init__()
        self._parts = parts
        self._starts = list(itertools.accumulate((len(p) for p in parts), initial=0))
        self._length = self._starts[-1]
        self._position = 0
        self.sent = 0

    def __len__(self):
        return self._length

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}
        self._position = max(0, min(self._length, base[whence] + offset))
        return self._position

    def tell(self):
        return self._position

    def _rest_of_part(self) -> memoryview:
        if self._position >= self._length:
            return memoryview(b"")
        index = bisect.bisect_right(self._starts, self._position) - 1
        return self._parts[index][self._position - self._starts[index] :]

    def read(self, size=-1):
        # the rest of one part whatever `size`: urllib3 sends each block as it comes
        block = self._rest_of_part()
        self._position += len(block)
        self.sent += len(block)
        return block

    def readinto(self, buffer):
        block = self._rest_of_part()[: len(buffer)]
        buffer[: len(block)] = block
        self._position += len(block)
        self.sent += len(block)
        return len(block)


class Uploader:
    """Restores files; one instance shared by the run's threads."""

    def __init__(
        self,
        drive: OneDrive,
        store: ChunkStore,
        events: "queue.Queue",
        stop: StopSignal,
        *,
        conflict: str,
        fragment_size: int,
        attempts: int,
        sleep: Callable[[float], None] | None = None,
    ):
        self.drive = drive
        self.store = store
        self.events = events
        self.stop = stop
        self.conflict = conflict
        self.behavior = BEHAVIORS[conflict]
        self.fragment_size = fragment_size
        self.attempts = attempts
        # waits (Retry-After beyond the client's, a hash not reported yet) end at a stop
        self.sleep = sleep or (lambda seconds: stop.event.wait(seconds))

    # -- the file ----------------------------------------------------------------------------
    def restore(self, task: FileTask) -> ItemOutcome | None:
        """The file's outcome; None when the run stopped (the item stays pending)."""
        try:
            return self._restore(task)
        except Stopped:
            return None
        except WholeRestoreBlocked:
            raise
        except Exception as error:  # a bug must cost one file, not the restore
            log.exception("Restoring item %s failed unexpectedly", task.pk)
            return self._outcome(
                task, "failed", f"Kodo stopped on an unexpected error ({type(error).__name__})."
            )

    def _restore(self, task: FileTask) -> ItemOutcome:
        session = _Open(task.saved_session)  # an attempt broken off mid-file resumes it
        outcome = self._attempts(task, session)
        outcome.sent = session.unreported
        return outcome

    def _attempts(self, task: FileTask, session: "_Open") -> ItemOutcome:
        error = ""
        replace_id = ""  # the new item, after Microsoft reported other content for it
        created_new = False
        for attempt in range(1, self.attempts + 1):
            self._check_stop(session.url)
            try:
                if task.size == 0:
                    item, created = self._empty_file(task, replace_id)
                else:
                    item, created = self._upload(task, session, replace_id)
            except Exists:
                return self._outcome(task, "skipped", "exists")
            except StoreError as exc:
                self._abandon(session)
                return self._outcome(
                    task,
                    "failed",
                    f"The backed-up content cannot be read from Kodo's store ({exc}); "
                    "VERIFY the store.",
                )
            except PermissionDenied as exc:
                self._abandon(session)
                raise WholeRestoreBlocked(
                    f"Microsoft 365 refused to let Kodo write to the OneDrive: {exc}"
                ) from exc
            except Throttled as exc:
                error = str(exc)
                self.sleep(min(exc.retry_after or 1.0, 60))
                continue
            except GraphError as exc:
                if exc.status == 507:
                    self._abandon(session)
                    raise WholeRestoreBlocked(
                        f"The target OneDrive is full (Microsoft: {exc.message or exc})."
                    ) from exc
                error = str(exc)
                log.info("Restoring item %s: attempt %d failed: %s", task.pk, attempt, error)
                continue
            except Stopped:
                raise
            except Exception as exc:  # a bug must cost one file, not the restore
                log.exception("Restoring item %s failed unexpectedly", task.pk)
                self._abandon(session)
                return self._outcome(
                    task, "failed", f"Kodo stopped on an unexpected error ({type(exc).__name__})."
                )
            created_new = created_new or created
            try:
                ok, item, said = self._verify(item, task)
            except GraphError as exc:  # uploaded, but not confirmed: give it the content again
                error = f"Microsoft's answer for the uploaded file could not be checked: {exc}"
                replace_id = item.get("id", "") or replace_id
                continue
            if ok:
                message = ""
                if item.get("name") and item["name"] != task.name:
                    message = f'restored as "{item["name"]}"'
                return self._outcome(task, "restored", message, item.get("id", ""))
            error = said
            replace_id = item.get("id", "") or replace_id
            log.warning("Restoring item %s: %s (attempt %d)", task.pk, said, attempt)
        self._abandon(session)
        if replace_id and created_new:
            self.drive.delete(replace_id)  # no wrong content left behind under a restored name
            error += " The uploaded copy was deleted."
        elif replace_id:
            error += " The file it replaced in OneDrive holds that content now."
        return self._outcome(task, "failed", f"{error} (after {self.attempts} attempts)".strip())

    def _abandon(self, session: "_Open") -> None:
        if session.url:
            self.drive.cancel_session(session.url)
            session.url = ""

    def _verify(self, item: dict, task: FileTask) -> tuple[bool, dict, str]:
        """Microsoft's own quickXorHash and size of the new item against the backed-up ones (a
        GET of the item when the answer carried no hash)."""
        for check in range(HASH_CHECKS + 1):
            reported, size = item_hash(item), item.get("size")
            if reported is not None and size is not None:
                if reported == task.quickxorhash and int(size) == task.size:
                    return True, item, ""
                return (
                    False,
                    item,
                    f"Microsoft reported {size} bytes with quickXorHash {reported} for the "
                    f"uploaded file, not {task.size} bytes with {task.quickxorhash}.",
                )
            if check == HASH_CHECKS or not item.get("id"):
                break
            self.sleep(0.5 * 2**check)
            item = self.drive.item(item["id"])
        return False, item, "Microsoft reported no quickXorHash for the uploaded file."

    # -- uploads -----------------------------------------------------------------------------
    def _upload(self, task: FileTask, session: "_Open", replace_id: str) -> tuple[dict, bool]:
        offset = 0
        if session.url:
            offset, there = self._resume(task, session)
            if there is not None:
                return there, False
        if not session.url:
            self._open_session(task, session, replace_id)
        content = VersionContent(self.store, task.chunks)
        restarts = asks = 0
        while True:
            self._check_stop(session.url)
            if offset:
                self._wait_until_saved(session)
            wanted = min(self.fragment_size, task.size - offset)
            body = _CountedBody(content.read(offset, wanted))
            if len(body) != wanted:
                raise StoreError(
                    f"the stored content ends at byte {offset + len(body)}, before its "
                    f"recorded size of {task.size} bytes"
                )
            try:
                answer = self.drive.put_fragment(session.url, body, offset, task.size)
            except RangeNotExpected:
                self.events.put(Progress(task.pk, offset, body.sent))
                asks += 1
                now = self.drive.session_offset(session.url)
                if asks > MAX_RANGE_ASKS or now is None or now < 0:
                    raise GraphError(
                        "The upload session kept answering 416 or lost its place."
                    ) from None
                offset = now
                continue
            except SessionGone:
                self.events.put(Progress(task.pk, 0, body.sent))
                session.url = ""
                there = self._already_there(task)
                if there is not None:
                    return there, False
                restarts += 1
                if restarts > MAX_SESSION_RESTARTS:
                    raise
                self._open_session(task, session, replace_id)
                offset = 0
                continue
            except NameTaken:
                self.events.put(Progress(task.pk, offset, body.sent))
                self._abandon(session)
                if self.conflict == "skip":
                    raise Exists from None
                raise
            except GraphError:
                self.events.put(Progress(task.pk, offset, body.sent))
                raise
            done = offset + len(body)
            if answer.item is not None:
                session.url = ""  # complete: nothing to resume or delete
                session.unreported += body.sent  # told with the outcome: one event less
                return answer.item, answer.created
            self.events.put(Progress(task.pk, done, body.sent))
            offset = answer.next_offset if answer.next_offset is not None else done

    def _resume(self, task: FileTask, session: "_Open") -> tuple[int, dict | None]:
        """(offset, None) to go on with an open session (session.url emptied: start over), or
        (0, item) when the file is there already (a session that completed, its answer lost)."""
        offset = self.drive.session_offset(session.url)
        if offset is None:
            session.url = ""
            return 0, self._already_there(task)
        if offset < 0 or offset >= task.size:  # every byte there, yet no file: refused at the end
            self._abandon(session)
            return 0, None
        log.info("Item %s: resuming its upload session at byte %d", task.pk, offset)
        return offset, None

    def _already_there(self, task: FileTask) -> dict | None:
        """The file as a finished session of Kodo's left it (its answer lost), if it is there
        with the backed-up size and hash."""
        existing = self.drive.child(task.parent_id, task.name)
        if (
            existing is not None
            and item_hash(existing) == task.quickxorhash
            and existing.get("size") == task.size
        ):
            return existing
        return None

    def _open_session(self, task: FileTask, session: _Open, replace_id: str) -> None:
        if replace_id:
            opened = self.drive.create_session_for(
                replace_id, created=task.created, modified=task.modified
            )
        else:
            if self.conflict == "skip" and task.check_exists and self._exists(task):
                raise Exists
            try:
                opened = self.drive.create_session(
                    task.parent_id,
                    task.name,
                    self.behavior,
                    created=task.created,
                    modified=task.modified,
                )
            except NameTaken:
                if self.conflict == "skip":
                    raise Exists from None
                raise
        session.url = opened.url
        session.saving = SessionOpened(task.pk, opened)
        self.events.put(session.saving)

    def _wait_until_saved(self, session: _Open) -> None:
        """The main thread commits a new session's URL while its first fragment goes; the
        second waits for it. So a worker that dies has sent at most one fragment of a session
        the next worker does not know (and a file of one fragment never waits)."""
        saving = session.saving
        if saving is None:
            return
        while not saving.saved.wait(0.5):
            self._check_stop(session.url)
        session.saving = None

    def _exists(self, task: FileTask) -> bool:
        return self.drive.child(task.parent_id, task.name) is not None

    def _empty_file(self, task: FileTask, replace_id: str) -> tuple[dict, bool]:
        if replace_id:
            item = self.drive.replace_small(replace_id, b"")
        else:
            if self.conflict == "skip" and task.check_exists and self._exists(task):
                raise Exists
            try:
                item = self.drive.upload_small(task.parent_id, task.name, b"", self.behavior)
            except NameTaken:
                if self.conflict == "skip":
                    raise Exists from None
                raise
        if task.created is not None or task.modified is not None:
            item = self.drive.set_times(item["id"], task.created, task.modified)
        return item, False

    # -- stopping ----------------------------------------------------------------------------
    def _check_stop(self, url: str = "") -> None:
        if not self.stop.is_set():
            return
        if url and self.stop.cancel:
            self.drive.cancel_session(url)  # nobody will resume it
        raise Stopped

    @staticmethod
    def _outcome(task: FileTask, status: str, message: str = "", new_item_id: str = ""):
        return ItemOutcome(task.pk, status, message, new_item_id, task.size)
