"""A backed-up version's bytes as fragments from any offset, straight from the store: chunk by
chunk (each authenticated by the store), never the whole file in memory. Resuming at an offset
skips the whole chunks before it without reading them (FileVersion.chunks holds their sizes)."""

from collections.abc import Iterator

from backups.store import ChunkStore


class VersionContent:
    def __init__(self, store: ChunkStore, chunks: list):
        self.store = store
        self.chunks = [(chunk_id, int(size)) for chunk_id, size in chunks]
        self._stream: Iterator[bytes] = iter(())
        self._pending = memoryview(b"")
        self._position = -1  # the offset of _pending's first byte; -1: nothing open

    def read(self, offset: int, length: int) -> list[memoryview]:
        """`length` bytes from `offset` (fewer only at the end of the content), as views of the
        chunks they are in (no copy). Reading on from where the last read ended continues the
        open stream; any other offset reopens it."""
        if offset != self._position:
            self._open(offset)
        parts: list[memoryview] = []
        got = 0
        while got < length:
            if not self._pending:
                block = next(self._stream, None)
                if block is None:
                    break
                self._pending = memoryview(block)
            take = min(length - got, len(self._pending))
            parts.append(self._pending[:take])
            self._pending = self._pending[take:]
            got += take
        self._position += got
        return parts

    def _open(self, offset: int) -> None:
        start = index = 0
        while index < len(self.chunks) and start + self.chunks[index][1] <= offset:
            start += self.chunks[index][1]
            index += 1
        self._stream = self.store.read_stream(chunk_id for chunk_id, _ in self.chunks[index:])
        self._pending = memoryview(b"")
        self._position = start
        skip = offset - start
        if skip:
            first = next(self._stream, None)
            if first is not None:
                self._pending = memoryview(first)[skip:]
            self._position = offset
