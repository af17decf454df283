"""Backed-up files handed back to people: one version (whole, or one byte range) and a selection
as a streamed zip. The download views and `manage.py export` share it; nothing here knows about
requests.

Every byte comes from the chunk store, chunk by chunk, each chunk authenticated by the store
(its id is recomputed from the plaintext) and checked against the size its version recorded.
When a chunk cannot be read back exactly, the stream stops with `Unreadable` rather than send a
byte that is not the backed-up one: a browser then sees a cut download, never a wrong file.

The zip is written by zipstream-ng (a maintained streaming zip writer): stored, not deflated,
so its length is known before the first byte (Content-Length) and memory stays constant
whatever the size; zip64 where sizes need it; names in UTF-8; folders (empty ones too) and
modified times kept.
"""

import dataclasses
import datetime as dt
import logging
import re
import struct
import unicodedata
import zoneinfo
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import zipstream
from django.template.defaultfilters import filesizeformat

from backups.models import FileVersion
from backups.selection import Picked
from backups.store import ChunkStore, StoreError
from organizations import audit

log = logging.getLogger(__name__)

LEFT_OUT_NAME = "Files Kodo could not include.txt"
# The zip format's DOS times cover 1980-2107; times outside are clamped (as zipstream-ng does).
_ZIP_FIRST = (1980, 1, 1, 0, 0, 0)
_ZIP_LAST = (2107, 12, 31, 23, 59, 58)
_LOCAL_HEADER = b"PK\x03\x04"
_MIME_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")


class Unreadable(Exception):
    """A version's content cannot be read back as it was backed up (a chunk is missing, fails
    authentication, or is not the size recorded). What was already streamed must be thrown
    away: the stream stops here."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# -- one version -------------------------------------------------------------------------------


def unavailable_reason(version: FileVersion) -> str:
    """Why this version cannot be downloaded at all, known before reading it ("" if it can)."""
    if version.damage == FileVersion.Damage.LOST:
        return "a chunk of this version is damaged and no later backup held it again: it is lost"
    if version.damage == FileVersion.Damage.DAMAGED:
        return (
            "a chunk of this version is damaged; the next backup of the user stores it again "
            "if the file is still in OneDrive"
        )
    if sum(size for _, size in version.chunks) != version.size:
        return "its recorded chunks do not add up to its size"
    return ""


def read_version(
    version: FileVersion, store: ChunkStore, *, start: int = 0, stop: int | None = None
) -> Iterator[bytes]:
    """The bytes [start, stop) of `version` (all of it by default), one chunk at a time.
    Chunks wholly before `start` or from `stop` on are not read at all, so a resumed download
    costs only what it sends. Raises Unreadable (and logs it) instead of yielding a wrong
    byte."""
    return read_chunks(version.chunks, store, path=version.path, start=start, stop=stop)


def read_chunks(
    chunks: Sequence[Sequence], store: ChunkStore, *, path: str, start=0, stop=None
) -> Iterator[bytes]:
    """read_version for a bare chunk list ([[chunk id, plaintext size], ...])."""
    offset = 0
    for chunk_id, size in chunks:
        chunk_start, offset = offset, offset + size
        if offset <= start or size == 0:
            continue
        if stop is not None and chunk_start >= stop:
            return
        try:
            data = store.get_chunk(chunk_id)
        except (StoreError, OSError) as error:
            reason = f"chunk {chunk_id[:12]} could not be read ({error!r})"
            raise _unreadable(path, reason) from error
        if len(data) != size:
            raise _unreadable(path, f"chunk {chunk_id[:12]} holds {len(data)} bytes, not {size}")
        low = max(start - chunk_start, 0)
        high = size if stop is None else min(stop - chunk_start, size)
        yield data if (low, high) == (0, size) else data[low:high]


def _unreadable(path: str, reason: str) -> Unreadable:
    log.error("download stopped: %s: %s", path, reason)
    return Unreadable(path, reason)


def content_type(version: FileVersion) -> str:
    """The version's MIME type as Graph gave it, when it is one; else application/octet-stream."""
    mime = (version.mime_type or "").strip()
    return mime if _MIME_TYPE.match(mime) else "application/octet-stream"


# -- byte ranges -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ByteRange:
    start: int
    stop: int  # exclusive

    @property
    def length(self) -> int:
        return self.stop - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{size}"


class Unsatisfiable(Exception):
    """The Range asked for starts beyond the end of the file (answer 416)."""


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range a Range header asks for, clamped to the file; None when the whole file is
    to be sent: no header, or one this server may ignore (another unit, several ranges, bad
    syntax: RFC 9110 14.2). Unsatisfiable when no byte of the range exists."""
    match = _RANGE.match((header or "").strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(size - suffix, 0), size)
    start = int(first)
    stop = size if not last else int(last) + 1
    if last and stop <= start:
        return None  # last before first: invalid, ignored
    if start >= size:
        raise Unsatisfiable
    return ByteRange(start, min(stop, size))


# -- a selection as a zip ----------------------------------------------------------------------


@dataclass(frozen=True)
class ZipMember:
    """One entry of the zip: a folder, or a file with the chunks it is read from."""

    name: str  # inside the zip, "/"-separated
    source_path: str  # in OneDrive, for messages
    is_folder: bool
    size: int
    modified: dt.datetime | None
    chunks: tuple = ()


@dataclass
class ZipPlan:
    """What a zip will hold, decided before its first byte is sent (so its length is known):
    its members, and the files left out because they are known unreadable (listed in a text
    file inside the zip, so leaving them out is never silent)."""

    members: list[ZipMember] = dataclasses.field(default_factory=list)
    left_out: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (path, why)

    @property
    def files(self) -> int:
        return sum(1 for member in self.members if not member.is_folder)

    @property
    def bytes(self) -> int:
        return sum(member.size for member in self.members)


def plan_zip(picks: Iterable[Picked]) -> ZipPlan:
    """The members for a selection (backups.selection.select): each name once (a second file
    of the same name, e.g. two versions picked, becomes "name (2).ext"; a folder met twice is
    one folder), unsafe path parts ("..") neutralized. Only what is needed to stream each file
    is kept, so a plan of many files stays small."""
    plan = ZipPlan()
    taken: set[str] = set()
    for picked in picks:
        version = picked.version
        name = safe_relative_path(picked.relative_path)
        if not name:
            continue
        if version.is_folder:
            if name.casefold() not in taken:
                taken.add(name.casefold())
                plan.members.append(
                    ZipMember(name, version.path, True, 0, version.modified_datetime)
                )
            continue
        reason = unavailable_reason(version)
        if reason:
            plan.left_out.append((version.path, reason))
            continue
        name = _unique(name, taken)
        plan.members.append(
            ZipMember(
                name,
                version.path,
                False,
                version.size,
                version.modified_datetime,
                tuple((chunk_id, size) for chunk_id, size in version.chunks),
            )
        )
    return plan


def safe_relative_path(path: str) -> str:
    """A relative "/"-separated path whose parts cannot climb out of where it is written:
    empty, "." and ".." parts are dropped."""
    return "/".join(part for part in path.split("/") if part not in ("", ".", ".."))


def _unique(name: str, taken: set[str]) -> str:
    folder, _, leaf = name.rpartition("/")
    stem, dot, extension = leaf.rpartition(".")
    if not stem:  # no extension (or a name like ".profile")
        stem, dot, extension = leaf, "", ""
    candidate, number = name, 1
    while candidate.casefold() in taken:
        number += 1
        leaf = f"{stem} ({number}){dot}{extension}"
        candidate = f"{folder}/{leaf}" if folder else leaf
    taken.add(candidate.casefold())
    return candidate


class _TimedZipStream(zipstream.ZipStream):
    """zipstream-ng's ZipStream, with each member's modified time. Its add() takes no time for
    data that is not a file on disk (pR0Ps/zipstream-ng#27, open) and stamps "now", so the time
    rides along in the queued entry and is written into the entry's local header and its
    central directory record. tests/backups/test_zip_download.py reads both back.

    With `skip_unreadable`, a member whose content turns out unreadable is left out of the
    central directory (its partial bytes stay in the file, referenced by nothing) and named in
    `unreadable`: a zip being written to disk by manage.py export goes on with the next file.
    Without it (the web), Unreadable stops the stream."""

    def __init__(self, *, skip_unreadable: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.skip_unreadable = skip_unreadable
        self.unreadable: list[Unreadable] = []

    def add_member(self, data, name: str, *, size: int, date_time: tuple | None):
        self.add(data, name, size=size)
        self._queue[-1]["date_time"] = date_time

    def _gen_file_entry(self, *, date_time=None, **kwargs):
        entry = super()._gen_file_entry(**kwargs)
        header = next(entry)
        if date_time is not None and header.startswith(_LOCAL_HEADER):
            header = header[:10] + struct.pack("<HH", *_dos_time(date_time)) + header[14:]
        yield header
        try:
            yield from entry
        except Unreadable as error:
            if not self.skip_unreadable:
                raise
            self.unreadable.append(error)
            return
        if date_time is not None:
            self._filelist[-1].date_time = date_time


def _dos_time(date_time: tuple) -> tuple[int, int]:
    year, month, day, hour, minute, second = date_time
    return (hour << 11 | minute << 5 | second // 2, (year - 1980) << 9 | month << 5 | day)


def zip_time(moment: dt.datetime | None, time_zone: str) -> tuple | None:
    """A zip entry's time: the wall-clock time in `time_zone` (zip times have no zone; unzip
    tools read them as local time), clamped to what the format holds."""
    if moment is None:
        return None
    stamp = tuple(moment.astimezone(zoneinfo.ZoneInfo(time_zone)).timetuple()[:6])
    return min(max(stamp, _ZIP_FIRST), _ZIP_LAST)


def build_zip(
    plan: ZipPlan, store: ChunkStore, *, time_zone: str = "UTC", skip_unreadable: bool = False
) -> _TimedZipStream:
    """The zip of `plan` as a zipstream-ng ZipStream: iterate it for the bytes; len() is its
    exact size. Files are read from the store only as the zip is iterated."""
    stream = _TimedZipStream(sized=True, skip_unreadable=skip_unreadable)
    for member in plan.members:
        when = zip_time(member.modified, time_zone)
        if member.is_folder:
            stream.add_member(None, member.name + "/", size=0, date_time=when)
        elif member.size == 0:
            stream.add_member(b"", member.name, size=0, date_time=when)
        else:
            content = read_chunks(member.chunks, store, path=member.source_path)
            stream.add_member(content, member.name, size=member.size, date_time=when)
    if plan.left_out:
        text = left_out_text(plan).encode()
        stream.add_member(text, LEFT_OUT_NAME, size=len(text), date_time=None)
    return stream


def left_out_text(plan: ZipPlan) -> str:
    lines = [
        "Kodo left these files out of this zip: their backed-up content cannot be read back.",
        "",
    ]
    lines += [f"{path}: {why}" for path, why in plan.left_out]
    return "\r\n".join(lines) + "\r\n"


# -- names -------------------------------------------------------------------------------------


def zip_filename(directory_user, as_of: dt.datetime | None, time_zone: str) -> str:
    """ "<user> <restore point date>.zip", the date in the organization's time zone (no colons:
    Windows refuses them in file names)."""
    when = ""
    if as_of is not None:
        when = " " + as_of.astimezone(zoneinfo.ZoneInfo(time_zone)).strftime("%Y-%m-%d %H-%M")
    return f"{directory_user}{when}.zip"


def attachment_header(filename: str) -> str:
    """Content-Disposition for a download named `filename`, whatever its script: the UTF-8 name
    (RFC 5987/6266 `filename*`) for today's browsers, and an ASCII look-alike for the others."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = re.sub(r'[^\x20-\x7e]|["\\%]', "_", fallback).strip() or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# -- the audit log -----------------------------------------------------------------------------


def describe_selection(
    *, paths: Sequence[str] = (), version_ids: Sequence = (), whole_drive=False, deleted_only=False
) -> str:
    """What a selection is, for the audit log: "/Documents", "3 paths", "the whole OneDrive"..."""
    parts = []
    if whole_drive:
        parts.append("the whole OneDrive")
    if deleted_only:
        parts.append("deleted items")
    if len(paths) == 1:
        parts.append(paths[0])
    elif paths:
        parts.append(f"{len(paths)} paths")
    if len(version_ids) == 1:
        parts.append("1 version")
    elif version_ids:
        parts.append(f"{len(version_ids)} versions")
    return " and ".join(parts) or "nothing"


def record_download(
    *,
    organization,
    directory_user,
    what: str,
    as_of: dt.datetime | None,
    size: int,
    files: int | None = None,
    request=None,
    actor_email: str = "",
    action: str = "download",
) -> None:
    """The audit entry of a download or export: who (the request's account or actor_email),
    what, as of when, how much, whose."""
    when = "?"
    if as_of is not None:
        local = as_of.astimezone(zoneinfo.ZoneInfo(organization.time_zone))
        when = f"{local:%Y-%m-%d %H:%M} ({organization.time_zone})"
    count = "" if files is None else f"{files} files, "
    audit.record(
        action,
        f"Downloaded {what} of {directory_user} ({directory_user.email}) as of {when}: "
        f"{count}{filesizeformat(size)}.",
        request=request,
        organization=organization,
        actor_email=actor_email,
    )
