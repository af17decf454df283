"""Retention: remove the file versions the schedules no longer keep, then the chunks nothing
refers to any more, safely while backups run.

Versions. Each drive follows the most generous policy among the enabled schedules that back its
user up (KODO_DEFAULT_KEEP_VERSIONS / KODO_DEFAULT_KEEP_DELETED_DAYS for users no schedule
covers). An item keeps its current version plus the newest `keep_versions - 1` older ones; a
deleted item keeps all its versions until the deletion is older than the keep-deleted period.
Current versions are never removed, and folder versions only with their deleted folder (they
carry no content, and old points in time stay whole).

Chunks: mark and sweep. A backup stores chunks before it records the versions that point to them,
and it reuses a chunk that is already stored without writing it again, so "no version refers to
it" is not yet "nobody needs it". A chunk found unreferenced is first marked; a later prune, once
the mark is older than KODO_PRUNE_GRACE_HOURS (longer than the longest backup task), takes it
out of the store but holds it aside; only a prune one more grace period later deletes the held
copy.

A backup that reused a stored chunk (deduplication) makes it safe before it records a version
using it (`secure_chunks`): it deletes the chunk's mark, or, when prune already held the chunk
aside, puts it back and then deletes the mark. Prune holds a chunk aside only by claiming its
mark (`held_at` set where it is still unset, in the transaction that moves the chunk), so the two
never both act: a mark the backup deleted cannot be claimed, and a backup that waits for prune's
claim to commit finds the chunk held and puts it back. Chunks of versions recorded while prune
ran are looked up again right before holding. No recorded version lacks a chunk, in any order.
"""

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from backups.models import (
    BackupRun,
    DriveState,
    FileVersion,
    OrganizationStoreKey,
    UnreferencedChunk,
)
from backups.storage import backend
from backups.store import ChunkStore, ObjectNotFound
from organizations.models import Organization

log = logging.getLogger(__name__)

BATCH = 1000


@dataclass(frozen=True)
class Policy:
    keep_versions: int
    keep_deleted: dt.timedelta

    def most_generous(self, other: "Policy") -> "Policy":
        return Policy(
            max(self.keep_versions, other.keep_versions), max(self.keep_deleted, other.keep_deleted)
        )


def default_policy() -> Policy:
    return Policy(
        getattr(settings, "KODO_DEFAULT_KEEP_VERSIONS", 30),
        dt.timedelta(days=getattr(settings, "KODO_DEFAULT_KEEP_DELETED_DAYS", 365)),
    )


def grace_period() -> dt.timedelta:
    return dt.timedelta(hours=getattr(settings, "KODO_PRUNE_GRACE_HOURS", 24))


# Where retention policies come from: functions of an organization giving {directory user id:
# policy}. Backups sits below schedules, so the schedules app registers its source at start
# (schedules.apps); a user no source covers follows default_policy().
POLICY_SOURCES: list[Callable[[Organization], dict[int, Policy]]] = []


def register_policy_source(source: Callable[[Organization], dict[int, Policy]]) -> None:
    if source not in POLICY_SOURCES:
        POLICY_SOURCES.append(source)


def policies_for(organization) -> dict[int, Policy]:
    """{directory user id: policy}: the most generous policy any source gives each user."""
    policies: dict[int, Policy] = {}
    for source in POLICY_SOURCES:
        for user_id, policy in source(organization).items():
            known = policies.get(user_id)
            policies[user_id] = policy if known is None else known.most_generous(policy)
    return policies


@dataclass
class PruneReport:
    organization: Organization
    dry_run: bool = False
    versions_removed: int = 0
    chunks_marked: int = 0  # found unreferenced for the first time
    chunks_removed: int = 0  # taken out of the store (held aside for one more grace period)
    bytes_removed: int = 0
    chunks_deleted: int = 0  # held copies deleted for good
    chunks_restored: int = 0  # held, then found referenced: put back
    chunks_missing: int = 0  # referenced but not in the store: run verify_store

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        text = (
            f"[{self.organization}] {verb} {self.versions_removed} file versions and "
            f"{self.chunks_removed} chunks ({filesizeformat(self.bytes_removed)}); "
            f"{self.chunks_marked} chunks newly unreferenced, {self.chunks_deleted} held "
            f"chunks deleted, {self.chunks_restored} put back"
        )
        if self.chunks_missing:
            text += f"; {self.chunks_missing} referenced chunks are MISSING (run verify_store)"
        return text


def compact_store() -> str:
    """Free the space of deleted objects in the store's pack files (a filesystem store that
    packs small chunks; other stores free space as they delete)."""
    compact = getattr(backend(), "compact", None)
    if compact is None:
        return "The store has no pack files to compact."
    report = compact()
    return (
        f"Store packs: {report['packs_deleted']} deleted, {report['packs_rewritten']} "
        f"rewritten, {filesizeformat(report['bytes_freed'])} freed"
    )


def organizations_to_prune():
    return Organization.objects.filter(
        Q(pk__in=OrganizationStoreKey.objects.values("organization"))
        | Q(pk__in=DriveState.objects.values("organization"))
    ).order_by("name")


# ----- versions ------------------------------------------------------------------------------


def versions_to_prune(organization, now) -> list[int]:
    """The pks of the ended versions the policy no longer keeps."""
    policies = policies_for(organization)
    default = default_policy()
    drive_users = dict(
        DriveState.objects.filter(organization=organization).values_list("pk", "directory_user_id")
    )
    rows = (
        FileVersion.objects.for_organization(organization)
        .order_by("drive_id", "item_id", "first_run_id", "pk")
        .values_list("pk", "drive_id", "item_id", "is_folder", "end_run_id", "deleted")
    )
    doomed = []
    deleted_items = []  # (pks still kept, end run of the deletion, keep-deleted period)
    for (drive_id, _), group in groupby(rows.iterator(chunk_size=5000), key=itemgetter(1, 2)):
        versions = list(group)
        policy = policies.get(drive_users[drive_id], default)
        current = [v for v in versions if v[4] is None]
        head = current[-1] if current else versions[-1]
        cut = []
        if not head[3]:  # folder versions stay while the folder does
            older = [v[0] for v in versions if v[4] is not None and v is not head]
            cut = older[: max(len(older) - max(policy.keep_versions - 1, 0), 0)]
            doomed.extend(cut)
        if not current and head[5]:
            gone = set(cut)
            kept = [v[0] for v in versions if v[0] not in gone]
            deleted_items.append((kept, head[4], policy.keep_deleted))
    doomed.extend(_expired_deletions(deleted_items, now))
    return doomed


def _expired_deletions(deleted_items, now):
    """Versions of deleted items whose deletion is older than their keep-deleted period."""
    for start in range(0, len(deleted_items), BATCH):
        batch = deleted_items[start : start + BATCH]
        deleted_at = {
            pk: finished or created
            for pk, finished, created in BackupRun.objects.filter(
                pk__in={run_id for _, run_id, _ in batch}
            ).values_list("pk", "finished_at", "created_at")
        }
        for kept, run_id, keep_deleted in batch:
            if deleted_at[run_id] <= now - keep_deleted:
                yield from kept


# ----- chunks --------------------------------------------------------------------------------


class HeldChunks:
    """Chunks taken out of an organization's store, kept aside under orgs/<namespace>/pruned/."""

    def __init__(self, store: ChunkStore):
        self.store = store
        self.backend = store.backend

    def _key(self, chunk_id):
        self.store.chunk_key(chunk_id)  # validates the id
        return f"orgs/{self.store.namespace}/pruned/{chunk_id[:2]}/{chunk_id}"

    def hold(self, chunk_id) -> int:
        """Move the chunk aside; its stored size (raises ObjectNotFound if it is not stored)."""
        blob = self.backend.get(self.store.chunk_key(chunk_id))
        self.backend.put(self._key(chunk_id), blob)
        self.store.delete_chunk(chunk_id)
        return len(blob)

    def give_back(self, chunk_id) -> bool:
        """Put a held chunk back into the store (unless a backup stored it again)."""
        if not self.store.has_chunk(chunk_id):
            try:
                blob = self.backend.get(self._key(chunk_id))
                self.backend.put(self.store.chunk_key(chunk_id), blob)
            except ObjectNotFound:
                return False
        self.drop(chunk_id)
        return True

    def drop(self, chunk_id):
        self.backend.delete(self._key(chunk_id))


def sweep_chunks(
    organization, store: ChunkStore, now, report: PruneReport, ignore_versions=frozenset()
):
    """Mark, hold aside and delete the organization's unreferenced chunks (see the module doc).

    `ignore_versions`: versions to count as gone (a dry run's doomed versions)."""
    started = timezone.now()
    dry_run = report.dry_run
    grace = grace_period()
    held = HeldChunks(store)
    referenced = _referenced_chunks(organization, ignore_versions)
    stored = set(store.iter_chunk_ids())
    # Versions recorded while we listed belong to runs running now or finished since we started.
    referenced |= _chunks_of_recent_runs(organization, started)
    marks = {m.chunk_id: m for m in UnreferencedChunk.objects.filter(organization=organization)}

    done_with = []  # marks to delete
    for chunk_id, mark in marks.items():
        if chunk_id in referenced:
            if mark.held_at is not None and chunk_id not in stored:
                if dry_run or held.give_back(chunk_id):
                    report.chunks_restored += 1
                    stored.add(chunk_id)
            elif mark.held_at is not None and not dry_run:
                held.drop(chunk_id)
            done_with.append(mark.pk)
        elif mark.held_at is None and chunk_id not in stored:
            done_with.append(mark.pk)  # gone by other means

    missing = referenced - stored
    if missing:
        report.chunks_missing = len(missing)
        log.warning(
            "[%s] %d referenced chunks are not in the store, e.g. %s; run verify_store.",
            organization,
            len(missing),
            next(iter(missing)),
        )

    unreferenced = stored - referenced
    new = sorted(unreferenced - marks.keys())
    report.chunks_marked = len(new)
    to_hold = [
        m
        for m in marks.values()
        if m.held_at is None and m.chunk_id in unreferenced and m.marked_at <= now - grace
    ]
    to_delete = [
        m
        for m in marks.values()
        if m.held_at is not None
        and m.chunk_id not in stored
        and m.chunk_id not in referenced
        and m.held_at <= now - grace
    ]
    # Held but stored again since (a backup wrote it anew): the held copy is not needed, and the
    # stored one starts its own grace period.
    to_remark = [m for m in marks.values() if m.held_at is not None and m.chunk_id in unreferenced]

    if dry_run:
        report.chunks_removed = len(to_hold)
        report.bytes_removed = sum(_size(store, m.chunk_id) for m in to_hold)
        report.chunks_deleted = len(to_delete)
        return report

    UnreferencedChunk.objects.filter(pk__in=done_with).delete()
    UnreferencedChunk.objects.bulk_create(
        [
            UnreferencedChunk(organization=organization, chunk_id=chunk_id, marked_at=now)
            for chunk_id in new
        ],
        batch_size=BATCH,
        ignore_conflicts=True,
    )
    # A backup may have recorded versions using these chunks since we listed the references.
    referenced |= _chunks_of_recent_runs(organization, started)
    for mark in to_hold:
        if mark.chunk_id in referenced:
            continue
        size = _hold_if_still_marked(held, mark, now)
        if size is not None:
            report.chunks_removed += 1
            report.bytes_removed += size
    for mark in to_delete:
        with transaction.atomic():
            # Claimed by deleting the mark (a backup putting the chunk back deletes it too).
            if UnreferencedChunk.objects.filter(pk=mark.pk, held_at=mark.held_at).delete()[0]:
                held.drop(mark.chunk_id)
                report.chunks_deleted += 1
    for mark in to_remark:
        held.drop(mark.chunk_id)
        # .update(): a backup may have deleted the mark meanwhile (it reused the chunk).
        UnreferencedChunk.objects.filter(pk=mark.pk).update(held_at=None, marked_at=now)
    return report


def _hold_if_still_marked(held: HeldChunks, mark: UnreferencedChunk, now) -> int | None:
    """Hold the chunk aside if its mark is still there and unclaimed: claim it (a write, so a
    backup securing the chunk meanwhile waits for this transaction, then finds it held and puts
    it back), then move the chunk. The stored size, or None when a backup got there first."""
    with transaction.atomic():
        claimed = UnreferencedChunk.objects.filter(pk=mark.pk, held_at__isnull=True).update(
            held_at=now
        )
        if not claimed:
            return None
        try:
            size = held.hold(mark.chunk_id)
        except ObjectNotFound:
            UnreferencedChunk.objects.filter(pk=mark.pk).delete()
            return None
        UnreferencedChunk.objects.filter(pk=mark.pk).update(stored_size=size)
    return size


def secure_chunks(organization, store: ChunkStore, chunk_ids) -> set[str]:
    """Make chunks a backup is about to record versions with safe from prune (see the module
    doc): un-mark them, putting back any prune already held aside. Call it after the chunks
    written by the backup are durable and before recording. Returns the chunks that are gone
    (held and no longer kept): their versions must not be recorded."""
    chunk_ids = sorted(chunk_ids)
    marks = UnreferencedChunk.objects.filter(organization=organization)
    lost = set()
    held = None
    for start in range(0, len(chunk_ids), BATCH):
        batch = chunk_ids[start : start + BATCH]
        # A write first: it waits for a prune holding one of them to commit.
        marks.filter(chunk_id__in=batch, held_at__isnull=True).delete()
        for mark in marks.filter(chunk_id__in=batch):  # held aside by a prune
            held = held or HeldChunks(store)
            if held.give_back(mark.chunk_id):
                log.info(
                    "[%s] chunk %s was held aside by prune and reused: put back",
                    organization,
                    mark.chunk_id,
                )
            else:
                lost.add(mark.chunk_id)
            mark.delete()
    return lost


def _referenced_chunks(organization, ignore_versions) -> set[str]:
    referenced: set[str] = set()
    rows = (
        FileVersion.objects.for_organization(organization)
        .filter(is_folder=False)
        .values_list("pk", "chunks")
    )
    for pk, chunks in rows.iterator(chunk_size=2000):
        if pk not in ignore_versions:
            referenced.update(chunk_id for chunk_id, _ in chunks)
    return referenced


def _chunks_of_recent_runs(organization, since) -> set[str]:
    runs = BackupRun.objects.for_organization(organization).filter(
        Q(status__in=BackupRun.ACTIVE_STATUSES)
        | Q(finished_at__isnull=True)
        | Q(finished_at__gte=since)
    )
    rows = (
        FileVersion.objects.for_organization(organization)
        .filter(first_run__in=runs)
        .values_list("chunks", flat=True)
    )
    return {chunk_id for chunks in rows.iterator(chunk_size=2000) for chunk_id, _ in chunks}


def _size(store, chunk_id) -> int:
    try:
        return store.backend.size(store.chunk_key(chunk_id))
    except ObjectNotFound:
        return 0
