"""The Django side of the chunk store: each organization's wrapped keys and its ChunkStore."""

from collections.abc import Iterator
from functools import cache

from django.conf import settings
from django.db import IntegrityError, transaction

from backups.models import DamagedChunk, FileVersion, OrganizationStoreKey
from backups.store import ChunkStore, OrgKeys, open_backend
from kodo import crypto


@cache
def _backend(url: str, pack_below: int):
    return open_backend(url, pack_below=pack_below)


def backend():
    return _backend(settings.KODO_STORE_URL, settings.KODO_STORE_PACK_BELOW)


def org_keys(organization) -> OrgKeys:
    """The organization's store keys, created on first use and kept wrapped with
    KODO_ENCRYPTION_KEYS."""
    row = OrganizationStoreKey.objects.filter(organization=organization).first()
    if row is None:
        try:
            with transaction.atomic():
                row = OrganizationStoreKey.objects.create(
                    organization=organization,
                    wrapped_keys=crypto.encrypt(OrgKeys.generate().to_bytes()),
                )
        except IntegrityError:  # another process created it first: use theirs
            row = OrganizationStoreKey.objects.get(organization=organization)
    return row.org_keys()


def store_for(organization, workers: int = 4) -> ChunkStore:
    """The organization's ChunkStore; the chunks a verification found damaged are never
    deduplicated onto (storing their content again writes them anew: see clear_damage)."""
    damaged = DamagedChunk.objects.filter(organization=organization).values_list(
        "chunk_id", flat=True
    )
    return ChunkStore(
        backend(),
        org_keys(organization),
        namespace=organization.code.hex,
        workers=workers,
        damaged=damaged,
    )


def clear_damage(organization, chunk_ids) -> None:
    """These damaged chunks were stored again, durably: they are sound, and so is every version
    whose chunks are all sound now (lost versions included: they can be restored again)."""
    chunk_ids = sorted(chunk_ids)
    if not chunk_ids:
        return
    with transaction.atomic():
        for start in range(0, len(chunk_ids), 500):
            DamagedChunk.objects.filter(
                organization=organization, chunk_id__in=chunk_ids[start : start + 500]
            ).delete()
        still = set(
            DamagedChunk.objects.filter(organization=organization).values_list(
                "chunk_id", flat=True
            )
        )
        flagged = (
            FileVersion.objects.for_organization(organization)
            .exclude(damage=FileVersion.Damage.SOUND)
            .values_list("pk", "chunks")
        )
        sound = [pk for pk, chunks in flagged if not any(c in still for c, _ in chunks)]
        FileVersion.objects.filter(pk__in=sound).update(damage=FileVersion.Damage.SOUND)


def iter_version_content(version: FileVersion, store: ChunkStore | None = None) -> Iterator[bytes]:
    """The bytes of a backed-up file version, chunk by chunk, each authenticated (else
    CorruptChunk)."""
    store = store or store_for(version.organization)
    return store.read_stream(version.chunk_ids)
