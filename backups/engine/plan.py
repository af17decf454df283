"""Planning a run from the delta: the items Graph lists, the tree and paths they make, the stored
versions to compare them with, and what to record, download, end or skip."""

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from backups.engine.host import EngineMixin
from backups.models import DriveState, FileVersion, RunIssue
from o365.graph import NotFound, ResyncRequired

log = logging.getLogger(__name__)

RECORD_BATCH = 500


class Skip(Exception):
    def __init__(self, reason, message=""):
        super().__init__(message or reason)
        self.reason = reason
        self.message = message


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
            modified=_parse_time(
                info.get("lastModifiedDateTime") or raw.get("lastModifiedDateTime")
            ),
            download_url=raw.get("@microsoft.graph.downloadUrl") or "",
        )

    @classmethod
    def from_version(cls, version: FileVersion) -> "Item":
        return cls(
            id=version.item_id,
            parent_id=version.parent_id,
            name=version.name,
            is_folder=version.is_folder,
            size=version.size,
            quickxorhash=version.quickxorhash,
            ctag=version.ctag,
            etag=version.etag,
            mime_type=version.mime_type,
            created=version.created_datetime,
            modified=version.modified_datetime,
        )


def _parse_time(text):
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class Plan:
    metadata: list = field(default_factory=list)  # (Item, path): new version, same content
    downloads: list = field(default_factory=list)  # (Item, path)
    deletions: list = field(default_factory=list)  # FileVersion to end
    skips: list = field(default_factory=list)  # (Item, path, Skip)


class Planning(EngineMixin):
    """OneDriveBackup's reading of the delta and its plan (uses self.client, self._beat)."""

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
        self._heal_ids = set(
            FileVersion.objects.current()
            .filter(drive=state, damage=FileVersion.Damage.DAMAGED)
            .values_list("item_id", flat=True)
        )
        self._add_items(state, listing, sorted(self._heal_ids))

    def _add_items(self, state, listing, item_ids):
        for item_id in item_ids:
            if item_id in listing:
                continue
            try:
                listing[item_id] = Item.parse(
                    self.client.get(f"/drives/{state.drive_id}/items/{item_id}")
                )
            except NotFound:
                listing[item_id] = Item(id=item_id, deleted=True)

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
                    reason = RunIssue.Reason.MALWARE if item.malware else RunIssue.Reason.ONENOTE
                    plan.skips.append((item, path, Skip(reason)))
                continue
            if version is None:
                (plan.metadata if item.is_folder else plan.downloads).append((item, path))
            elif not item.is_folder and (
                _content_changed(version, item) or item_id in self._heal_ids
            ):
                plan.downloads.append((item, path))
            elif (
                version.path != path
                or version.name != item.name
                or version.etag != item.etag
                or version.parent_id != item.parent_id
            ):
                plan.metadata.append((item, path))
        return plan


def _content_changed(version: FileVersion, item: Item) -> bool:
    if item.ctag and version.ctag:
        if item.ctag != version.ctag:
            return True
    return item.quickxorhash != version.quickxorhash or item.size != version.size


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
    versions = _versions_where(
        current, "item_id__in", {item.id for item in listed} | {i.parent_id for i in listed}
    )
    moved = sorted(
        folder.path + "/"
        for item in listed
        if (folder := versions.get(item.id)) is not None
        and folder.is_folder
        and (item.deleted or item.name != folder.name or item.parent_id != folder.parent_id)
    )
    outermost: list[str] = []  # a deleted tree lists every folder in it: one query for the top one
    for prefix in moved:  # sorted: what starts with a prefix follows it
        if not outermost or not prefix.startswith(outermost[-1]):
            outermost.append(prefix)
    for prefix in outermost:
        versions.update(
            (v.item_id, v)
            for v in current.filter(path__startswith=prefix)
            if v.path.startswith(prefix)
        )  # SQLite's LIKE ignores case
    ancestors = {
        path[:end]
        for path in (v.path for v in versions.values())
        for end in _separator_positions(path)
    }
    versions.update(_versions_where(current, "path__in", ancestors - {""}))
    return versions


def _versions_where(current, lookup: str, values: set) -> dict:
    found: dict = {}
    ordered = sorted(v for v in values if v)
    for start in range(0, len(ordered), RECORD_BATCH):
        found.update(
            (v.item_id, v)
            for v in current.filter(**{lookup: ordered[start : start + RECORD_BATCH]})
        )
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
