"""The plan: a restore's selection, as of its restore point, listed as RestoreItems.

The listing goes PLAN_BATCH items per transaction, each first proving the claim (so a worker
that lost the job stops writing), and the last one marks the job `planned` with its totals. A
takeover of a job whose listing did not finish deletes what was listed and lists again: nothing
has been uploaded before the plan is complete."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast

from django.db import connection, transaction
from django.db.models import Field

from backups.models import RestoreItem, RestoreJob
from backups.restore.paths import destination, target_path
from backups.selection import Picked, select

PLAN_BATCH = 500


class NothingToRestore(Exception):
    pass


def selection_of(job: RestoreJob) -> Iterator[Picked]:
    """What the job restores, exactly as the pages and the commands mean it."""
    run = job.as_of_run
    if run is None:
        raise NothingToRestore("The restore point of this restore is no longer kept.")
    return select(
        job.source_user,
        run,
        paths=job.paths if job.what == RestoreJob.What.SELECTION else (),
        version_ids=job.version_ids if job.what == RestoreJob.What.SELECTION else (),
        whole_drive=job.what == RestoreJob.What.DRIVE,
        deleted_only=job.what == RestoreJob.What.DELETED,
    )


@contextmanager
def closed_after(selection: Iterator[Picked]):
    """The selection, closed when the block ends, however it ends: on PostgreSQL its iteration
    is a server-side cursor of the transaction, which must not be closed later by the garbage
    collector (in another transaction, where it no longer exists)."""
    try:
        yield selection
    finally:
        close = getattr(selection, "close", None)
        if close is not None:
            close()


def list_items(job: RestoreJob, prove_claim: Callable[[], None]) -> None:
    """Write the job's RestoreItems (unless it is planned already)."""
    if job.planned:
        return
    with transaction.atomic():
        prove_claim()
        job.items.all().delete()  # an earlier worker's unfinished listing
    base = destination(job.where, job.folder)
    with closed_after(selection_of(job)) as selection:
        _list(job, base, selection, prove_claim)


def _list(job, base, selection, prove_claim) -> None:
    batch: list[tuple] = []
    files = size = 0
    for picked in selection:
        version = picked.version
        if not picked.relative_path or version.path in ("", "/"):
            continue  # the drive's root: its content is what is restored
        item_size = 0 if version.is_folder else version.size
        target = target_path(job.where, base, version.path, picked.relative_path)
        batch.append((job.pk, version.pk, version.is_folder, version.path, target, item_size))
        if not version.is_folder:
            files += 1
            size += version.size
        if len(batch) >= PLAN_BATCH:
            _write(batch, prove_claim)
            batch = []
    with transaction.atomic():
        _write(batch, prove_claim)
        RestoreJob.objects.filter(pk=job.pk).update(
            planned=True, files_total=files, bytes_total=size
        )
    job.planned, job.files_total, job.bytes_total = True, files, size


def _write(batch: list[tuple], prove_claim: Callable[[], None]) -> None:
    """Insert pending items: (restore, version, is_folder, source path, target path, size)
    each. One statement run for the batch (bulk_create builds a model instance and compiles
    every value of every row: most of the listing's time)."""
    if not batch:
        with transaction.atomic():
            prove_claim()
        return
    meta = RestoreItem._meta
    quote = connection.ops.quote_name
    names = ["restore", "version", "is_folder", "source_path", "target_path", "size"]
    fixed: dict[str, object] = {"status": "pending", "message": "", "bytes_done": 0}
    fixed["new_item_id"] = ""
    columns = [cast(Field, meta.get_field(name)).column for name in [*names, *fixed]]
    statement = (
        f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608 - the model's own identifiers
        f"({', '.join(quote(column) for column in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    rows = [[*row, *fixed.values()] for row in batch]
    with transaction.atomic():
        prove_claim()
        with connection.cursor() as cursor:
            cursor.executemany(statement, rows)
