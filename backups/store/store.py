"""ChunkStore: one organization's view of the content-addressed, encrypted chunk store."""

import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import crypto
from .backends import Backend
from .chunking import Chunker
from .errors import ObjectNotFound
from .keys import OrgKeys
from .quickxorhash import QuickXorHash

_NAMESPACE_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ChunkRef:
    id: str
    size: int  # plaintext bytes
    stored_size: int  # bytes in the backend (compressed + encrypted)
    new: bool  # this call stored it; False when it was already there


@dataclass(frozen=True)
class StreamResult:
    chunks: list[ChunkRef]
    size: int
    quickxorhash: str
    new_bytes_stored: int


class ChunkStore:
    """Chunks of one organization, stored under orgs/<namespace>/chunks/ in the backend.

    Holds no mutable state besides the backend (whose implementations are thread-safe), so threads
    may share one ChunkStore. Two threads storing the same new chunk at once may both upload it and
    both report new=True; the object stays valid, only the accounting counts it twice.
    """

    def __init__(
        self,
        backend: Backend,
        keys: OrgKeys,
        namespace: str,
        chunker: Chunker | None = None,
        workers: int = 4,
        damaged: Iterable[str] = (),
    ):
        if not _NAMESPACE_PATTERN.match(namespace):
            raise ValueError(
                f"Invalid store namespace {namespace!r}: use 1-64 letters, digits, '-' or '_'."
            )
        self.backend = backend
        self.keys = keys
        self.namespace = namespace
        self.chunker = chunker or Chunker()
        self.workers = workers
        # Chunks known corrupt or missing: never deduplicated onto, written again instead (then
        # listed in `healed` until take_healed()).
        self.damaged = set(damaged)
        self._healed: set[str] = set()
        self._healed_lock = threading.Lock()
        self._prefix = f"orgs/{namespace}/chunks/"
        # Backends with sync() can leave directory fsyncs to one sync() per batch of puts.
        self._deferrable = callable(getattr(backend, "sync", None))

    def __repr__(self) -> str:
        return f"ChunkStore({self.backend!r}, namespace={self.namespace!r})"

    def chunk_key(self, chunk_id: str) -> str:
        """The backend key of a chunk: one level of 256 folders (a second level made a new
        folder, with its fsync, for nearly every chunk of a store under 65,536 chunks)."""
        if not _ID_PATTERN.match(chunk_id):
            raise ValueError(f"{chunk_id!r} is not a chunk id (64 lowercase hex digits).")
        return f"{self._prefix}{chunk_id[:2]}/{chunk_id}"

    def put_chunk(self, plaintext: bytes, *, sync: bool = True) -> ChunkRef:
        """Store a chunk. With sync=False it is durable only after the next sync()."""
        chunk_id = crypto.chunk_id(self.keys, plaintext)
        key = self.chunk_key(chunk_id)
        damaged = chunk_id in self.damaged
        if not damaged:
            try:
                return ChunkRef(chunk_id, len(plaintext), self.backend.size(key), new=False)
            except ObjectNotFound:
                pass
        blob = crypto.seal(self.keys, chunk_id, plaintext)
        if self._deferrable and not sync:
            self.backend.put(key, blob, sync=False)
        else:
            self.backend.put(key, blob)
        if damaged:  # replaced: sound once durable (the caller's sync)
            with self._healed_lock:
                self.damaged.discard(chunk_id)
                self._healed.add(chunk_id)
        return ChunkRef(chunk_id, len(plaintext), len(blob), new=True)

    def take_healed(self) -> set[str]:
        """The damaged chunks written again since the last call: take them, then sync(), then
        count them as sound (a chunk written after the take waits for the next one)."""
        with self._healed_lock:
            healed, self._healed = self._healed, set()
        return healed

    def sync(self) -> None:
        """Make every chunk stored so far durable, also those of write_stream(defer_sync=True)
        and chunks another thread stored that this one found already there."""
        if self._deferrable:
            self.backend.sync()

    def get_chunk(self, chunk_id: str) -> bytes:
        """The chunk's plaintext, authenticated; raises CorruptChunk or ObjectNotFound."""
        return crypto.open_(self.keys, chunk_id, self.backend.get(self.chunk_key(chunk_id)))

    def has_chunk(self, chunk_id: str) -> bool:
        return self.backend.exists(self.chunk_key(chunk_id))

    def delete_chunk(self, chunk_id: str) -> None:
        self.backend.delete(self.chunk_key(chunk_id))

    def iter_chunk_ids(self) -> Iterator[str]:
        for key in self.backend.iter_keys(self._prefix):
            name = key.rpartition("/")[2]
            if _ID_PATTERN.match(name) and key == self.chunk_key(name):
                yield name

    def verify_chunk(self, chunk_id: str) -> None:
        """Re-read and authenticate a chunk; raises CorruptChunk or ObjectNotFound."""
        self.get_chunk(chunk_id)

    def write_stream(self, blocks: Iterable[bytes], *, defer_sync: bool = False) -> StreamResult:
        """Chunk, hash and store a stream in one pass, with bounded memory.

        Every chunk is stored before this returns, so callers can then record rows pointing to them;
        with defer_sync=True, only after they called sync() (which then covers many streams at
        once: the engine calls it once per group commit).
        """
        hasher = QuickXorHash()

        def hashed(blocks):
            for block in blocks:
                hasher.update(block)
                yield block

        # Chunks are sealed and stored by a few threads so that hashing the next chunk overlaps
        # with compressing, encrypting and fsyncing (or uploading) the previous ones. At most
        # workers + 2 chunks wait at a time, which keeps memory bounded. The last chunk is stored
        # by this thread (it has nothing else to do), so a one-chunk stream, the common small
        # file, starts no thread at all: starting threads per file cost more than the file.
        refs, pool, held = [], None, None
        pending: deque = deque()
        try:
            for chunk in self.chunker.chunks(hashed(blocks)):
                if held is not None:
                    if pool is None:
                        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="chunk-store")
                    pending.append(pool.submit(self.put_chunk, held, sync=False))
                    if len(pending) > self.workers:
                        refs.append(pending.popleft().result())
                held = chunk
            last = self.put_chunk(held, sync=False) if held is not None else None
            refs.extend(future.result() for future in pending)
            if last is not None:
                refs.append(last)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        if not defer_sync:
            self.sync()
        return StreamResult(
            chunks=refs,
            size=sum(ref.size for ref in refs),
            quickxorhash=hasher.b64digest(),
            new_bytes_stored=sum(ref.stored_size for ref in refs if ref.new),
        )

    def read_stream(self, chunk_ids: Iterable[str]) -> Iterator[bytes]:
        for chunk_id in chunk_ids:
            yield self.get_chunk(chunk_id)
