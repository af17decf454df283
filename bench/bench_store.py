"""ChunkStore throughput, the chunking choice, and the cost of small objects.

Run: python bench/bench_store.py [megabytes]   (default 1000)

1. write_stream of random (incompressible, like most OneDrive content) data to a temp filesystem
   backend, against writing the same bytes to one file (both fsynced); the same into a backend that
   stores nothing (the CPU cost alone); writing it again (all dedup); reading it back.
2. Dedup after a 100-byte insertion: FastCDC (512 KiB/1 MiB/4 MiB) against fixed 4 MiB chunks.
3. Small objects, written as the engine writes them: one file each (FilesystemBackend: temp file,
   fsync, rename, dir fsync) against packed (PackingFilesystemBackend: appended to pack files,
   one fsync per pack and one index commit per sync).
"""

import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from backups.store import ChunkStore, FilesystemBackend, ObjectNotFound, OrgKeys  # noqa: E402
from backups.store.chunking import Chunker  # noqa: E402
from backups.store.packs import PackingFilesystemBackend  # noqa: E402

MB = 1_000_000
MiB = 1024 * 1024
BLOCK = 1 << 20  # the size of a download read


def blocks(data: bytes):
    view = memoryview(data)
    for position in range(0, len(view), BLOCK):
        yield view[position : position + BLOCK]


def fixed_chunks(data: bytes, size: int = 4 * MiB):
    return [data[position : position + size] for position in range(0, len(data), size)]


class NullBackend:
    """Stores nothing: shows what chunking, hashing, compression and encryption cost alone."""

    def put(self, key, data):
        pass

    def size(self, key):
        raise ObjectNotFound(key)


def bench_throughput(data: bytes, root: str) -> None:
    store = ChunkStore(FilesystemBackend(os.path.join(root, "store")), OrgKeys.generate(), "bench")

    start = time.perf_counter()
    result = store.write_stream(blocks(data))
    write = time.perf_counter() - start

    start = time.perf_counter()
    with open(os.path.join(root, "copy"), "wb") as f:
        for block in blocks(data):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    copy = time.perf_counter() - start

    start = time.perf_counter()
    again = store.write_stream(blocks(data))
    rewrite = time.perf_counter() - start

    start = time.perf_counter()
    read_bytes = sum(len(chunk) for chunk in store.read_stream(ref.id for ref in result.chunks))
    read = time.perf_counter() - start
    assert read_bytes == len(data) and again.new_bytes_stored == 0

    size = len(data)
    print(f"1. {size // MB} MB random in {BLOCK // 1024} KiB blocks, {len(result.chunks)} chunks")
    print(f"   write_stream (new data):   {size / write / MB:7.0f} MB/s")
    print(f"   copy to one file + fsync:  {size / copy / MB:7.0f} MB/s")
    print(f"   ratio write_stream / copy: {copy / write:7.2f}")
    start = time.perf_counter()
    ChunkStore(NullBackend(), OrgKeys.generate(), "bench").write_stream(blocks(data))
    no_storage = time.perf_counter() - start
    print(f"   write_stream, no storage:  {size / no_storage / MB:7.0f} MB/s (CPU cost alone)")
    print(f"   write_stream (all dedup):  {size / rewrite / MB:7.0f} MB/s")
    print(f"   read_stream:               {size / read / MB:7.0f} MB/s")
    print(f"   stored {result.new_bytes_stored / size:.4f} bytes per input byte")


def bench_chunking(data: bytes) -> None:
    edited = data[: len(data) // 3] + b"x" * 100 + data[len(data) // 3 :]
    print(f"2. dedup after a 100-byte insertion at 1/3 of {len(data) // MiB} MiB")
    for name, split in (
        ("FastCDC 512K/1M/4M", lambda d: list(Chunker().chunks(blocks(d)))),
        ("fixed 4 MiB", fixed_chunks),
    ):
        start = time.perf_counter()
        before = split(data)
        seconds = time.perf_counter() - start
        known = set(before)
        new = sum(len(chunk) for chunk in split(edited) if chunk not in known)
        print(
            f"   {name:20s} {len(before):4d} chunks, {new / MiB:6.2f} MiB new, "
            f"chunking {len(data) / seconds / MB:6.0f} MB/s"
        )


def _put_as_the_engine_does(
    backend, count: int, payload: bytes, threads: int = 8, batch: int = 16
) -> float:
    """Seconds per object: `threads` threads put(sync=False), one sync() per `batch` objects
    (the engine's group commit)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for first in range(0, count, batch):
            keys = [f"orgs/o/chunks/{i % 256:02x}/{i:064x}" for i in range(first, first + batch)]
            list(pool.map(lambda key: backend.put(key, payload, sync=False), keys))
            backend.sync()
    return (time.perf_counter() - start) / count


def bench_small_objects(root: str, count: int = 4000, size: int = 64 * 1024) -> None:
    payload = os.urandom(size)
    loose = _put_as_the_engine_does(FilesystemBackend(os.path.join(root, "loose")), count, payload)
    packed = _put_as_the_engine_does(
        PackingFilesystemBackend(os.path.join(root, "packed")), count, payload
    )
    print(f"3. {count} objects of {size // 1024} KiB, 8 threads, one sync per 16 objects")
    print(f"   one file each (FilesystemBackend):         {loose * 1000:7.3f} ms per object")
    print(f"   packed (PackingFilesystemBackend):         {packed * 1000:7.3f} ms per object")
    print(f"   ratio loose / packed:                      {loose / packed:7.1f}")


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    data = np.random.default_rng(1).bytes(megabytes * MB)
    with tempfile.TemporaryDirectory(prefix="kodo-bench-") as root:
        bench_throughput(data, root)
        bench_chunking(data[: 64 * MiB])
        bench_small_objects(root)


if __name__ == "__main__":
    main()
