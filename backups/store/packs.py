"""A filesystem backend that packs small objects into larger files.

Creating a file costs far more than appending the same bytes to an open one (bench_store.py
part 3), and most OneDrive files are small. So objects under `pack_below` bytes are appended to
pack files (.packs/<process>-<random>.pack, up to PACK_SIZE bytes) and found through an index,
a SQLite database beside the packs that every process on the host shares. A process appends to
one open pack at a time (its threads take turns: an append is a copy into the page cache), so a
sync() fsyncs one pack and commits one transaction. Larger objects stay one file each, as in
FilesystemBackend.

Durability follows FilesystemBackend's contract. put(..., sync=True) returns once the object is
durable; put(..., sync=False) makes it visible to this process at once and durable at the next
sync(), which fsyncs the packs written to and only then commits their index rows. A crash before
that leaves bytes in a pack that no row points to: never an index row without its bytes.

Deleting an object deletes its row; compact() later deletes packs nothing points to any more and
rewrites those mostly dead. An open pack holds a shared flock until it is closed, which happens
only once every row pointing into it is committed; compact() takes an exclusive one, so it never
touches a pack whose rows may still come, in this process or another. A process that dies
releases its locks: the bytes it left without rows are garbage, and compacted as such.
"""

import fcntl
import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

from .backends import FilesystemBackend, _fsync_dir, _write_all, check_key
from .errors import ObjectNotFound

PACK_DIR = ".packs"  # a leading dot: no key can name it
PACK_SIZE = 64 << 20
INDEX_NAME = "index.sqlite3"
_SCHEMA = """CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY, pack TEXT NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL
) WITHOUT ROWID"""


@dataclass(frozen=True)
class Location:
    pack: str
    offset: int
    length: int


class _PackWriter:
    """An open pack: one thread at a time appends to it (under the backend's append lock)."""

    def __init__(self, directory: str):
        self.name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}.pack"
        self.fd = os.open(
            os.path.join(directory, self.name),
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
            0o600,
        )
        fcntl.flock(self.fd, fcntl.LOCK_SH)  # until closed: compact() keeps off
        self.size = 0
        self.synced = False  # its directory entry
        self.abandoned = False  # an fsync of it failed
        self.last_write = time.monotonic()

    def append(self, data) -> Location:
        location = Location(self.name, self.size, len(data))
        _write_all(self.fd, data)
        self.size += len(data)
        self.last_write = time.monotonic()
        return location

    def full_or_stale(self, idle_seconds: float) -> bool:
        """A pack is left for a new one when full, or when it has been idle for half the time
        after which compact() may look at it (then it is closed, and its lock released, once its
        rows are committed)."""
        return (
            self.abandoned
            or self.size >= PACK_SIZE
            or time.monotonic() - self.last_write > idle_seconds / 2
        )


class PackingFilesystemBackend(FilesystemBackend):
    def __init__(self, root, pack_below: int = 1 << 20, idle_seconds: float = 3600):
        super().__init__(root)
        self.pack_below = pack_below
        self.idle_seconds = idle_seconds
        self.pack_dir = os.path.join(self.root, PACK_DIR)
        os.makedirs(self.pack_dir, exist_ok=True)
        self._reset()
        self._prepare_index()
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (backend := reference()) and backend._reset())

    def __repr__(self) -> str:
        return f"PackingFilesystemBackend({self.root!r}, pack_below={self.pack_below})"

    def _reset(self):
        """Per-process state. A forked worker starts afresh (run in the child right after the
        fork): new locks, connections and packs; what the parent had not synced is the
        parent's to commit, not visible here."""
        self._state_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._unsynced_lock = threading.Lock()
        self._unsynced = set()
        self._local = threading.local()
        self._pending: dict[str, Location] = {}  # written, rows not committed yet
        self._replaced: set[str] = set()  # keys put as loose files: rows to delete at sync
        self._append_lock = threading.Lock()  # one append at a time, to self._current
        self._current: _PackWriter | None = None
        self._to_sync: dict[str, _PackWriter] = {}  # packs written to since the last sync
        self._retired: list[_PackWriter] = []  # full or stale: closed once synced

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._connect()
            db.execute("PRAGMA synchronous=FULL")  # a commit is durable when it returns
            self._local.db = db
        return db

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            os.path.join(self.pack_dir, INDEX_NAME),
            timeout=60,
            isolation_level=None,
            check_same_thread=True,
        )

    def _prepare_index(self):
        """WAL mode and the table, once per backend: switching the journal mode does not wait
        for a busy database (SQLite answers "locked" at once), so it is retried here rather than
        done by every thread's connection."""
        deadline = time.monotonic() + 60
        while True:
            db = self._connect()
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(_SCHEMA)
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            finally:
                db.close()
            time.sleep(0.05)

    # ----- writing --------------------------------------------------------------------

    def put(self, key: str, data, *, sync: bool = True) -> None:
        check_key(key)
        if len(data) >= self.pack_below:
            super().put(key, data, sync=False)
            with self._state_lock:  # its row goes once the file is durable (sync)
                self._pending.pop(key, None)
                self._replaced.add(key)
        else:
            self._append(key, data)
        if sync:
            self.sync()

    def _append(self, key: str, data) -> None:
        with self._append_lock:
            while True:
                writer = self._current
                if writer is None or writer.full_or_stale(self.idle_seconds):
                    if writer is not None:
                        with self._state_lock:
                            self._retired.append(writer)
                    writer = self._current = _PackWriter(self.pack_dir)
                try:
                    location = writer.append(data)
                except BaseException:  # a partial write: its size is unknown, leave it
                    self._current = None
                    with self._state_lock:
                        self._retired.append(writer)
                    raise
                with self._state_lock:  # an fsync of the pack may have failed meanwhile
                    if not writer.abandoned:
                        self._replaced.discard(key)
                        self._pending[key] = location
                        self._to_sync[writer.name] = writer
                        return

    def _close_retired(self) -> None:
        """Close the full or stale packs (releasing their locks) once what was written to them
        is fsynced and its rows committed. The caller holds _sync_lock: no sync is between
        its fsyncs and its commit."""
        if self._append_lock.acquire(blocking=False):  # else a thread is appending: not idle
            try:
                current = self._current
                if current is not None and current.full_or_stale(self.idle_seconds):
                    self._current = None
                    with self._state_lock:
                        self._retired.append(current)
            finally:
                self._append_lock.release()
        with self._state_lock:
            retired = [w for w in self._retired if w.name not in self._to_sync]
            self._retired = [w for w in self._retired if w.name in self._to_sync]
        for writer in retired:
            os.close(writer.fd)

    def sync(self) -> None:
        """Make every put so far durable: the packs' bytes first, then their index rows (and the
        loose files' directories, as FilesystemBackend does)."""
        with self._sync_lock:
            with self._state_lock:
                pending = dict(self._pending)  # stays visible here until its rows are committed
                writers, self._to_sync = list(self._to_sync.values()), {}
            for position, writer in enumerate(writers):
                try:
                    os.fsync(writer.fd)
                except OSError:
                    self._abandon(writer)
                    with self._state_lock:  # the others are fsynced at the next sync
                        self._to_sync.update((w.name, w) for w in writers[position + 1 :])
                    raise
            if any(not writer.synced for writer in writers):
                _fsync_dir(self.pack_dir)
                for writer in writers:
                    writer.synced = True
            if pending:
                try:
                    self._commit(pending)
                except BaseException:
                    with self._state_lock:  # the bytes are durable: commit them next time
                        self._to_sync.update((w.name, w) for w in writers)
                    raise
            with self._state_lock:
                for key, location in pending.items():
                    if self._pending.get(key) == location:
                        del self._pending[key]
            self._close_retired()
        with self._state_lock:  # loose files put before their folders' fsyncs below
            replaced, self._replaced = self._replaced, set()
        try:
            super().sync()
        except BaseException:
            with self._state_lock:  # unless put small again since
                self._replaced |= {key for key in replaced if key not in self._pending}
            raise
        if replaced:
            self._db().executemany(
                "DELETE FROM objects WHERE key = ?", [(key,) for key in replaced]
            )

    def _commit(self, pending: dict) -> None:
        db = self._db()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR REPLACE INTO objects (key, pack, offset, length) VALUES (?, ?, ?, ?)",
                [(key, loc.pack, loc.offset, loc.length) for key, loc in pending.items()],
            )

    def _abandon(self, writer: _PackWriter) -> None:
        """After a failed fsync the kernel may have dropped the pack's unwritten pages and call
        them clean: nothing written to it since its last good fsync is trusted. Those objects
        are forgotten (a backup fails its batch and downloads them again) and the pack is left."""
        with self._state_lock:
            self._pending = {
                key: loc for key, loc in self._pending.items() if loc.pack != writer.name
            }
            self._to_sync.pop(writer.name, None)
            writer.abandoned = True  # the next append retires it and writes to a new pack

    # ----- reading --------------------------------------------------------------------

    def _indexed(self, key: str) -> Location | None:
        with self._state_lock:
            if key in self._replaced:
                return None  # a loose file replaces it
            location = self._pending.get(key)
        if location is not None:
            return location
        row = (
            self._db()
            .execute("SELECT pack, offset, length FROM objects WHERE key = ?", (key,))
            .fetchone()
        )
        return Location(*row) if row else None

    def get(self, key: str) -> bytes:
        check_key(key)
        for _ in range(3):  # compact() may have moved it since we looked it up
            location = self._indexed(key)
            if location is None:
                return super().get(key)
            try:
                return self._read(location)
            except FileNotFoundError:
                continue
        raise ObjectNotFound(f"No object {key!r} in {self.root}: its pack went away.")

    def _read(self, location: Location) -> bytes:
        fd = os.open(os.path.join(self.pack_dir, location.pack), os.O_RDONLY)
        try:
            data = os.pread(fd, location.length, location.offset)
        finally:
            os.close(fd)
        if len(data) != location.length:
            raise ObjectNotFound(f"Pack {location.pack} is shorter than its index says.")
        return data

    def exists(self, key: str) -> bool:
        return self._indexed(check_key(key)) is not None or super().exists(key)

    def size(self, key: str) -> int:
        location = self._indexed(check_key(key))
        return location.length if location is not None else super().size(key)

    def delete(self, key: str) -> None:
        check_key(key)
        with self._state_lock:
            self._pending.pop(key, None)
            self._replaced.discard(key)
        self._db().execute("DELETE FROM objects WHERE key = ?", (key,))
        super().delete(key)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        loose = set(super().iter_keys(prefix))
        with self._state_lock:
            pending = {key for key in self._pending if key.startswith(prefix)}
        # Keys are ASCII below 0x7f: this range is exactly the keys starting with prefix.
        # fetchall() closes the read at once (a cursor left open would pin a WAL snapshot).
        packed = {
            key
            for (key,) in self._db()
            .execute(
                "SELECT key FROM objects WHERE key >= ? AND key < ?", (prefix, prefix + "\x7f")
            )
            .fetchall()
        }
        yield from sorted(loose | pending | packed)

    # ----- space -----------------------------------------------------------------------

    def compact(self, min_live: float = 0.5) -> dict:
        """Delete packs no row points to and rewrite those with less than `min_live` of their
        bytes in use, among the packs untouched for idle_seconds; returns what it did."""
        report = {"packs_deleted": 0, "packs_rewritten": 0, "bytes_freed": 0}
        with self._sync_lock:
            self._close_retired()  # this process's own idle packs, if any
        now = time.time()
        for name in sorted(os.listdir(self.pack_dir)):
            if name.endswith(".pack"):
                self._compact_pack(name, min_live, now, report)
        if report["packs_deleted"] or report["packs_rewritten"]:
            _fsync_dir(self.pack_dir)
        return report

    def _compact_pack(self, name: str, min_live: float, now: float, report: dict) -> None:
        path = os.path.join(self.pack_dir, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return  # another compact() was here first
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # a writer may still commit rows into it
            stat = os.fstat(fd)
            if stat.st_nlink == 0 or now - stat.st_mtime < self.idle_seconds:
                return
            count, used = (
                self._db()
                .execute(
                    "SELECT COUNT(*), COALESCE(SUM(length), 0) FROM objects WHERE pack = ?", (name,)
                )
                .fetchone()
            )
            if count and used >= min_live * stat.st_size:
                return
            if count:
                self._rewrite(name)
                report["packs_rewritten"] += 1
            else:
                report["packs_deleted"] += 1
            os.unlink(path)
            report["bytes_freed"] += stat.st_size - used
        finally:
            os.close(fd)

    def _rewrite(self, pack: str) -> None:
        """Copy a pack's live objects to an open pack; each row moves only if it still
        points to the old place (a concurrent delete or put wins)."""
        db = self._db()
        rows = db.execute(
            "SELECT key, offset, length FROM objects WHERE pack = ?", (pack,)
        ).fetchall()
        writer = _PackWriter(self.pack_dir)  # its own, open (locked) until the rows are moved
        try:
            moves = []
            for key, offset, length in rows:
                new = writer.append(self._read(Location(pack, offset, length)))
                moves.append((new.pack, new.offset, key, pack, offset))
            os.fsync(writer.fd)
            _fsync_dir(self.pack_dir)
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    "UPDATE objects SET pack = ?, offset = ? "
                    "WHERE key = ? AND pack = ? AND offset = ?",
                    moves,
                )
        finally:
            os.close(writer.fd)
