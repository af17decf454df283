"""The run: RestoreRun takes one claimed RestoreJob from its plan to its end, proving its claim
(the heartbeat) in every transaction; execute_restore adds the client, the store, the job's end
on any error, and the email and audit entry.

Threads: KODO_RESTORE_UPLOAD_THREADS threads upload files (backups.restore.upload, no database);
this thread lists, makes the folders, hands out files and writes everything down. What a thread
must have saved (an upload session's URL, before its first byte; a fragment's progress) comes
here as an event, and a batch of events and finished files is one transaction that first beats.
Cancel and takeover show at that beat: the threads stop at their next fragment (a cancel deletes
their sessions; a takeover leaves them to the worker that resumes them)."""

import logging
import queue
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import cast

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Field
from django.utils import timezone

from backups import conf
from backups.models import FileVersion, RestoreItem, RestoreJob
from backups.restore import notify
from backups.restore.folders import FolderBlocked, Folders
from backups.restore.paths import parent_and_name
from backups.restore.plan import NothingToRestore, list_items
from backups.restore.upload import (
    FileTask,
    ItemOutcome,
    Progress,
    SessionOpened,
    StopSignal,
    Uploader,
    WholeRestoreBlocked,
)
from backups.storage import store_for
from backups.store import ChunkStore
from kodo import crypto, jobs
from o365.graph import GraphError, PermissionDenied
from o365.onedrive import NoOneDrive, OneDrive, user_drive_id
from o365.problems import describe

log = logging.getLogger(__name__)

ITEM_PAGE = 500  # items read (and folder results written) at a time
QUEUED_PER_THREAD = 16  # files handed to the pool ahead, per thread (work while recording)
GATHER_SECONDS = 0.2  # how long the threads' words are gathered into one transaction
OUTCOME_FIELDS = [
    "status",
    "message",
    "new_item_id",
    "finished_at",
    "upload_session",
    "upload_expires_at",
    "bytes_done",
]
Status = RestoreItem.Status


class RestoreRun:
    def __init__(
        self,
        job: RestoreJob,
        client,
        store: ChunkStore,
        *,
        threads: int | None = None,
        attempts: int | None = None,
        fragment_size: int | None = None,
        progress: Callable[[RestoreJob], None] | None = None,
        sleep: Callable[[float], None] | None = None,
    ):
        self.job = job
        self.client = client
        self.store = store
        self.threads = threads or settings.KODO_RESTORE_UPLOAD_THREADS
        self.attempts = attempts or settings.KODO_RESTORE_UPLOAD_ATTEMPTS
        self.fragment_size = fragment_size or settings.KODO_RESTORE_FRAGMENT_BYTES
        self.progress = progress or (lambda job: None)
        self.sleep = sleep
        self.events: queue.Queue = queue.Queue()
        self.stop = StopSignal()
        self._in_flight: dict[int, int] = {}  # item pk -> bytes its session holds

    def execute(self) -> None:
        job = self.job
        self._set_phase("Listing files")
        self.drive = OneDrive(self.client, self._target_drive_id())
        list_items(job, job.beat)
        done = job.files_done
        left = job.files_total - done
        resumed = f" ({done} done before the worker was lost)" if done else ""
        self._set_phase(f"Restoring {left} files{resumed}")
        folders = Folders(self.drive, keep_both=job.conflict == RestoreJob.Conflict.RENAME)
        self._restore_folders(folders)
        self._restore_files(folders)
        self._finish()

    def _target_drive_id(self) -> str:
        drive_id = user_drive_id(self.client, self.job.target_user.graph_id)
        if drive_id != self.job.target_drive_id:
            self.job.target_drive_id = drive_id
            RestoreJob.objects.filter(pk=self.job.pk).update(target_drive_id=drive_id)
        return drive_id

    # -- folders (this thread) ---------------------------------------------------------------
    def _restore_folders(self, folders: Folders) -> None:
        made = self.job.items.filter(is_folder=True).exclude(new_item_id="")
        for path, item_id in made.values_list("target_path", "new_item_id").iterator():
            folders.know(path, item_id)
        with ThreadPoolExecutor(self.threads, thread_name_prefix="restore-folders") as pool:
            for page in self._pages(is_folder=True):
                outcomes: list[ItemOutcome] = []
                by_depth: dict[int, list[RestoreItem]] = {}
                for item in page:
                    by_depth.setdefault(item.target_path.count("/"), []).append(item)
                for depth in sorted(by_depth):  # parents first, siblings in parallel
                    outcomes += pool.map(lambda item: self._folder(folders, item), by_depth[depth])
                self._record([], outcomes)

    def _folder(self, folders: Folders, item: RestoreItem) -> ItemOutcome:
        version = item.version
        try:
            made = folders.make(
                item.target_path,
                created=version.created_datetime if version else None,
                modified=version.modified_datetime if version else None,
            )
        except FolderBlocked as blocked:
            return ItemOutcome(item.pk, Status.FAILED, str(blocked), is_folder=True)
        except PermissionDenied as error:
            raise WholeRestoreBlocked(
                f"Microsoft 365 refused to let Kodo write to the OneDrive: {error}"
            ) from error
        except GraphError as error:
            return ItemOutcome(item.pk, Status.FAILED, str(error), is_folder=True)
        message = ""
        if made.name != item.target_path.rpartition("/")[2]:
            message = f'restored as "{made.name}"'
        if made.created:
            status = Status.RESTORED
        elif self.job.conflict == RestoreJob.Conflict.SKIP:
            status, message = Status.SKIPPED, "exists"
        else:
            status, message = Status.RESTORED, "the folder existed: its content went into it"
        return ItemOutcome(item.pk, status, message, made.item_id, is_folder=True)

    # -- files (the threads) -----------------------------------------------------------------
    def _restore_files(self, folders: Folders) -> None:
        uploader = Uploader(
            self.drive,
            self.store,
            self.events,
            self.stop,
            conflict=self.job.conflict,
            fragment_size=self.fragment_size,
            attempts=self.attempts,
            sleep=self.sleep,
        )
        items = (item for page in self._pages(is_folder=False) for item in page)
        in_flight: dict[Future, int] = {}
        window = QUEUED_PER_THREAD * self.threads
        with ThreadPoolExecutor(self.threads, thread_name_prefix="restore") as pool:
            try:
                while True:
                    outcomes: list[ItemOutcome] = []
                    while len(in_flight) < window:
                        item = next(items, None)
                        if item is None:
                            break
                        task = self._task_for(item, folders)
                        if isinstance(task, ItemOutcome):
                            outcomes.append(task)
                            continue
                        future = pool.submit(uploader.restore, task)
                        future.add_done_callback(lambda _: self.events.put(None))
                        in_flight[future] = task.pk
                        self._in_flight[task.pk] = item.bytes_done
                    if not in_flight and not outcomes:
                        break
                    events = self._take_events(wait=not outcomes)
                    for future in [f for f in in_flight if f.done()]:
                        pk = in_flight.pop(future)
                        self._in_flight.pop(pk, None)
                        outcome = future.result()  # WholeRestoreBlocked ends the restore
                        if outcome is not None:
                            outcomes.append(outcome)
                    self._record(events, outcomes)
            except BaseException as error:
                # A cancel (and a failure of the restore) deletes the sessions in flight; a
                # takeover or the time limit leaves them to the worker that goes on.
                resumed_elsewhere = isinstance(error, SoftTimeLimitExceeded) or (
                    isinstance(error, jobs.LostClaim) and not isinstance(error, jobs.JobCanceled)
                )
                self.stop.set(cancel=not resumed_elsewhere)
                for future in in_flight:
                    future.cancel()
                raise

    def _task_for(self, item: RestoreItem, folders: Folders) -> FileTask | ItemOutcome:
        version = item.version
        if version is None:
            return self._failed(
                item, "The backed-up version was removed by retention before it was restored."
            )
        if version.damage == FileVersion.Damage.LOST:
            return self._failed(
                item,
                "This version cannot be restored: a verification found a chunk of it damaged "
                "and no later backup held its content again.",
            )
        parent, name = parent_and_name(item.target_path)
        try:
            parent_id = folders.id_of(parent)
        except FolderBlocked as blocked:
            return self._failed(item, f"Its folder was not restored: {blocked}")
        except PermissionDenied as error:
            raise WholeRestoreBlocked(
                f"Microsoft 365 refused to let Kodo write to the OneDrive: {error}"
            ) from error
        except GraphError as error:
            return self._failed(item, f"Its folder could not be made: {error}")
        return FileTask(
            pk=item.pk,
            parent_id=parent_id,
            name=name,
            size=version.size,
            quickxorhash=version.quickxorhash,
            chunks=version.chunks,
            created=version.created_datetime,
            modified=version.modified_datetime,
            saved_session=crypto.decrypt_text(item.upload_session) if item.upload_session else "",
            check_exists=parent not in folders.created,
        )

    @staticmethod
    def _failed(item: RestoreItem, message: str) -> ItemOutcome:
        return ItemOutcome(item.pk, Status.FAILED, message, size=item.size)

    def _pages(self, *, is_folder: bool) -> Iterator[list[RestoreItem]]:
        """The job's pending items, ITEM_PAGE at a time, in the order they were listed."""
        last = 0
        while True:
            page = list(
                self.job.items.filter(status=Status.PENDING, is_folder=is_folder, pk__gt=last)
                .select_related("version")
                .order_by("pk")[:ITEM_PAGE]
            )
            if not page:
                return
            last = page[-1].pk
            yield page

    def _take_events(self, *, wait: bool) -> list:
        """What the threads said: waits (up to a heartbeat) for a first word when `wait`, then
        gathers for GATHER_SECONDS more, so that one transaction records many files."""
        events: list = []
        try:
            first = self.events.get(timeout=conf.HEARTBEAT_SECONDS) if wait else None
        except queue.Empty:
            return events
        if first is not None:
            events.append(first)
        until = time.monotonic() + GATHER_SECONDS
        while True:
            left = until - time.monotonic()
            try:
                event = self.events.get(timeout=left) if left > 0 else self.events.get_nowait()
            except queue.Empty:
                return events
            if event is not None:
                events.append(event)

    # -- writing it down ---------------------------------------------------------------------
    def _record(self, events: list, outcomes: list[ItemOutcome]) -> None:
        """One transaction, a fixed number of queries: beat (the claim is still ours), the
        sessions opened (encrypted: the URL is a credential) and the progress of the files
        still in flight, the finished items and the job's counters. Then the threads waiting
        for their session to be saved go on."""
        opened: dict[int, SessionOpened] = {}
        progress: dict[int, int] = {}
        sent = 0
        for event in events:
            if isinstance(event, Progress):
                sent += event.sent
                progress[event.pk] = event.bytes_done
            elif isinstance(event, SessionOpened):
                opened[event.pk] = event
                progress[event.pk] = 0
        # only the files still in flight: an event may come after its file's outcome
        for pk, bytes_done in progress.items():
            if pk in self._in_flight:
                self._in_flight[pk] = bytes_done
        sessions = [
            (crypto.encrypt_text(event.session.url), event.session.expires, progress[pk], pk)
            for pk, event in opened.items()
            if pk in self._in_flight
        ]
        moved = [
            (done, pk)
            for pk, done in progress.items()
            if pk in self._in_flight and pk not in opened
        ]
        sent += sum(outcome.sent for outcome in outcomes)
        counts: dict[str, int] = {"bytes_uploaded": sent} if sent else {}
        now = timezone.now()
        rows = []
        for outcome in outcomes:
            done = outcome.size if outcome.status == Status.RESTORED else 0
            rows.append(
                (
                    outcome.status,
                    outcome.message[:2000],
                    outcome.new_item_id,
                    now,
                    None,
                    None,
                    done,
                    outcome.pk,
                )
            )
            if outcome.is_folder:
                continue
            counts[f"files_{outcome.status}"] = counts.get(f"files_{outcome.status}", 0) + 1
            counts["bytes_finished"] = counts.get("bytes_finished", 0) + outcome.size
            if outcome.status == Status.RESTORED:
                counts["bytes_restored"] = counts.get("bytes_restored", 0) + outcome.size
        with transaction.atomic():
            self.job.beat(bytes_in_flight=sum(self._in_flight.values()))
            update_items(["upload_session", "upload_expires_at", "bytes_done"], sessions)
            update_items(["bytes_done"], moved)
            update_items(OUTCOME_FIELDS, rows)
            if counts:
                self.job.add(**counts)
        for event in opened.values():
            event.saved.set()
        self.job.bytes_in_flight = sum(self._in_flight.values())
        self.progress(self.job)

    def _set_phase(self, phase: str) -> None:
        self.job.phase = phase
        RestoreJob.objects.filter(
            pk=self.job.pk, claim_token=self.job.claim_token, status=RestoreJob.Status.RUNNING
        ).update(phase=phase)
        self.progress(self.job)

    def _finish(self) -> None:
        job = self.job
        by_status = dict(
            job.items.order_by()
            .values_list("status")
            .annotate(count=Count("pk"))
            .values_list("status", "count")
        )
        failed = by_status.get(Status.FAILED, 0)
        done = by_status.get(Status.RESTORED, 0) + by_status.get(Status.SKIPPED, 0)
        error = ""
        if not failed:
            status = RestoreJob.Status.SUCCEEDED
        elif not done:
            status = RestoreJob.Status.FAILED
            first = (
                job.items.filter(status=Status.FAILED)
                .order_by("pk")
                .values_list("message", flat=True)
                .first()
            )
            error = f"Nothing could be restored. The first failure: {first}"
        else:
            status = RestoreJob.Status.PARTIAL
        job.finish(status, error, bytes_in_flight=0)


def update_items(fields: list[str], rows: list[tuple]) -> None:
    """UPDATE RestoreItems, one statement run for many rows: each row is the values of
    `fields` then the pk. (QuerySet.bulk_update builds a CASE per field and row, which cost the
    run's thread most of its time.)"""
    if not rows:
        return
    model = RestoreItem._meta
    quote = connection.ops.quote_name
    columns = [cast(Field, model.get_field(name)) for name in fields]
    # identifiers from the model only (quoted); every value is a parameter
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in columns)
    statement = (
        f"UPDATE {quote(model.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {quote(model.pk.column)} = %s"
    )
    prepared = [
        [
            field.get_db_prep_save(value, connection)
            for field, value in zip(columns, row[:-1], strict=True)
        ]
        + [row[-1]]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(statement, prepared)


def execute_restore(
    job: RestoreJob,
    *,
    threads: int | None = None,
    progress: Callable[[RestoreJob], None] | None = None,
    client_options: dict | None = None,
    fragment_size: int | None = None,
) -> RestoreJob:
    """Run a claimed RestoreJob to its end, with the target configuration's client and the
    organization's store; a failure ends the job with the reason (never raised), then the email
    and the audit entry. LostClaim and the task's soft time limit are raised: another worker
    goes on. A cancel stops at the next beat (do_cancel_restore has told everyone)."""
    configuration = job.target_user.configuration
    client = configuration.graph_client(**{"shared_session": True, **(client_options or {})})
    closed = False
    try:
        RestoreRun(
            job,
            client,
            store_for(job.organization),
            threads=threads,
            progress=progress,
            fragment_size=fragment_size,
        ).execute()
        closed = job.status != RestoreJob.Status.RUNNING
    except jobs.JobCanceled:
        log.info("Restore %s was canceled; its worker stops.", job.pk)
    except (jobs.LostClaim, SoftTimeLimitExceeded):
        log.warning("Restore %s: this worker stops; another one goes on.", job.pk)
        raise
    except NoOneDrive:
        closed = job.finish(
            RestoreJob.Status.FAILED,
            f"{job.target_user} ({job.target_user.email}) has no OneDrive: Microsoft 365 creates "
            "it when the user first opens OneDrive.",
            bytes_in_flight=0,
        )
    except (NothingToRestore, WholeRestoreBlocked) as error:
        closed = job.finish(RestoreJob.Status.FAILED, str(error), bytes_in_flight=0)
    except Exception as error:
        log.exception("Restore %s failed", job.pk)
        closed = job.finish(RestoreJob.Status.FAILED, describe(error), bytes_in_flight=0)
    finally:
        client.close()
    if closed:
        notify.restore_ended(job)
    job.refresh_from_db()
    return job
