"""Verification of an organization's backups: every file version's chunks exist, chunks
authenticate, contents still have their quickXorHash.

Damage is recorded, not only printed: each corrupt or missing chunk gets a DamagedChunk row (it is
never deduplicated onto again) and every version that uses one is flagged `damaged`, so that the
next backup of its user downloads the file again (backups.engine) and reports the older versions
the current OneDrive content could not heal as lost. Each chunk is read at most once and counted
once, however many versions share it; every version that uses a damaged chunk is named.

Nightly (`backups.tasks.verify_stores`) a sample of KODO_VERIFY_SAMPLE of the chunks is re-read,
all of them on Sundays; the existence of every referenced chunk is always checked.
"""

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backups.models import DamagedChunk, FileVersion, OrganizationStoreKey, Verification
from backups.store import ChunkStore, CorruptChunk, ObjectNotFound, QuickXorHash
from organizations.models import Organization

log = logging.getLogger(__name__)

BATCH = 500
FULL_VERIFICATION_WEEKDAY = 6  # Sunday: the nightly verification reads everything


@dataclass
class Findings:
    versions_checked: int = 0
    chunks_checked: int = 0
    damaged: dict = field(default_factory=dict)  # chunk id -> (DamagedChunk.Problem, message)
    mismatched: dict = field(default_factory=dict)  # version pk -> message
    affected: list = field(default_factory=list)  # (pk, path, reason) of every damaged version

    @property
    def problems(self) -> int:
        return len(self.damaged) + len(self.mismatched)


def nightly_sample(now=None) -> float:
    now = now or timezone.now()
    if now.weekday() == FULL_VERIFICATION_WEEKDAY:
        return 1.0
    return settings.KODO_VERIFY_SAMPLE


def organizations_to_verify():
    return Organization.objects.filter(
        pk__in=OrganizationStoreKey.objects.values("organization")
    ).order_by("name")


def find_damage(
    organization, store: ChunkStore, sample: float, say: Callable[[str], None] | None = None
) -> Findings:
    say = say or (lambda text: None)
    found = Findings()
    referenced: set[str] = set()
    read: set[str] = set()
    checked_contents = set()
    versions = (
        FileVersion.objects.for_organization(organization)
        .filter(is_folder=False)
        .only("pk", "path", "size", "quickxorhash", "chunks", "organization_id")
    )
    for version in versions.iterator(chunk_size=2000):
        found.versions_checked += 1
        ids = version.chunk_ids
        for chunk_id in ids:
            if chunk_id not in referenced:
                referenced.add(chunk_id)
                if not store.has_chunk(chunk_id):
                    found.damaged[chunk_id] = (DamagedChunk.Problem.MISSING, "missing")
        if any(chunk_id in found.damaged for chunk_id in ids):
            continue
        content_key = (version.quickxorhash, version.size, tuple(ids))
        if content_key in checked_contents or random.random() >= sample:
            continue
        checked_contents.add(content_key)
        _check_content(store, version, found, read)

    for chunk_id in store.iter_chunk_ids():
        if chunk_id in read or chunk_id in found.damaged:
            continue
        if chunk_id in referenced and random.random() >= sample:
            continue
        _read_chunk(store, chunk_id, found, read)

    found.chunks_checked = len(read)
    for chunk_id, (_, message) in sorted(found.damaged.items()):
        say(f"chunk {chunk_id} is {message}")
    if found.damaged or found.mismatched:
        _name_affected_versions(organization, found, say)
    return found


def _read_chunk(store, chunk_id, found: Findings, read: set) -> bytes | None:
    read.add(chunk_id)
    try:
        return store.get_chunk(chunk_id)
    except CorruptChunk as error:
        found.damaged[chunk_id] = (DamagedChunk.Problem.CORRUPT, f"unreadable: {error}")
    except ObjectNotFound:
        found.damaged[chunk_id] = (DamagedChunk.Problem.MISSING, "missing")
    return None


def _check_content(store, version, found: Findings, read: set) -> None:
    hasher, size = QuickXorHash(), 0
    for chunk_id in version.chunk_ids:
        if chunk_id in found.damaged:
            return
        data = _read_chunk(store, chunk_id, found, read)
        if data is None:
            return
        hasher.update(data)
        size += len(data)
    if size != version.size or hasher.b64digest() != version.quickxorhash:
        found.mismatched[version.pk] = (
            f"content is {size} bytes with quickXorHash {hasher.b64digest()}, recorded "
            f"{version.size} bytes with {version.quickxorhash}"
        )


def _name_affected_versions(organization, found: Findings, say) -> None:
    """Every version that uses a damaged chunk (not one per content), by name."""
    rows = (
        FileVersion.objects.for_organization(organization)
        .filter(is_folder=False)
        .order_by("path", "pk")
        .values_list("pk", "path", "chunks")
    )
    for pk, path, chunks in rows.iterator(chunk_size=2000):
        bad = [chunk_id for chunk_id, _ in chunks if chunk_id in found.damaged]
        if bad:
            problems = sorted({found.damaged[chunk_id][0] for chunk_id in bad})
            reason = f"damaged chunks: {len(bad)} ({' and '.join(problems)}), e.g. {bad[0]}"
        elif pk in found.mismatched:
            reason = found.mismatched[pk]
        else:
            continue
        found.affected.append((pk, path, reason))
        say(f"{path} (version {pk}): {reason}")


def record_damage(organization, found: Findings) -> None:
    """DamagedChunk rows for the damaged chunks, and the affected versions flagged (lost ones
    stay lost)."""
    with transaction.atomic():
        DamagedChunk.objects.bulk_create(
            [
                DamagedChunk(organization=organization, chunk_id=chunk_id, problem=problem)
                for chunk_id, (problem, _) in found.damaged.items()
            ],
            batch_size=BATCH,
            ignore_conflicts=True,
        )
        pks = [pk for pk, _, _ in found.affected]
        for start in range(0, len(pks), BATCH):
            FileVersion.objects.filter(
                pk__in=pks[start : start + BATCH], damage=FileVersion.Damage.SOUND
            ).update(damage=FileVersion.Damage.DAMAGED)
    if found.damaged:
        log.warning(
            "[%s] %d damaged chunks used by %d file versions; the next backups download "
            "those files again.",
            organization,
            len(found.damaged),
            len(found.affected),
        )


def health_summary(organization, since) -> str:
    """A few lines on the verifications since `since` and the versions lost, for the weekly
    summary email."""
    checks = list(
        Verification.objects.filter(organization=organization, created_at__gte=since).order_by(
            "-created_at"
        )[:50]
    )
    if not checks:
        lines = ["Backup verification: none ran."]
    else:
        last = checks[0]
        problems = sum(check.problems for check in checks)
        lines = [
            f"Backup verification: {len(checks)} runs, {problems} problems found; the last "
            f"({last.created_at:%Y-%m-%d %H:%M} UTC): {last.get_status_display().lower()}, "
            f"{last.chunks_checked} chunks re-read."
        ]
    lost = (
        FileVersion.objects.for_organization(organization)
        .filter(damage=FileVersion.Damage.LOST)
        .order_by("path")
    )
    lost_paths = list(lost.values_list("path", flat=True)[:20])
    if lost_paths:
        lines.append(f"Lost file versions (damaged, no longer in OneDrive): {lost.count()}")
        lines.extend(f"- {path}" for path in lost_paths)
    return "\n".join(lines)
