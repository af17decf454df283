"""The packing filesystem backend: small objects in pack files found through an index."""

import os
import threading

import pytest

from backups.store import ChunkStore, CorruptChunk, ObjectNotFound, open_backend, packs
from backups.store.packs import PACK_DIR, PackingFilesystemBackend


def pack_files(backend):
    return sorted(n for n in os.listdir(backend.pack_dir) if n.endswith(".pack"))


def test_small_objects_share_a_pack_and_large_ones_stay_files(packed_backend):
    for n in range(20):
        packed_backend.put(f"orgs/a/chunks/{n:02}", bytes([n]) * 100)
    packed_backend.put("orgs/a/chunks/big", b"B" * 5000)

    assert len(pack_files(packed_backend)) == 1
    assert os.path.isfile(os.path.join(packed_backend.root, "orgs", "a", "chunks", "big"))
    assert packed_backend.get("orgs/a/chunks/07") == bytes([7]) * 100
    assert packed_backend.size("orgs/a/chunks/07") == 100
    assert list(packed_backend.iter_keys("orgs/a/chunks/1")) == [
        f"orgs/a/chunks/{n}" for n in range(10, 20)
    ]
    assert len(list(packed_backend.iter_keys())) == 21  # nothing of .packs is a key


def test_an_unsynced_put_is_visible_here_and_durable_only_after_sync(packed_backend):
    packed_backend.put("k/small", b"s" * 10, sync=False)
    other_process = PackingFilesystemBackend(packed_backend.root, pack_below=4096)

    assert packed_backend.get("k/small") == b"s" * 10
    assert not other_process.exists("k/small")  # a crash now: bytes in a pack, no row
    packed_backend.sync()
    assert other_process.get("k/small") == b"s" * 10


def test_the_last_put_of_a_key_wins_packed_or_not(packed_backend):
    packed_backend.put("k", b"small")
    packed_backend.put("k", b"L" * 5000)
    assert packed_backend.get("k") == b"L" * 5000
    packed_backend.put("k", b"small again")
    assert packed_backend.get("k") == b"small again"
    packed_backend.delete("k")
    assert not packed_backend.exists("k")
    with pytest.raises(ObjectNotFound):
        packed_backend.get("k")
    assert list(packed_backend.iter_keys()) == []


def test_a_full_pack_is_followed_by_a_new_one(packed_backend, monkeypatch):
    monkeypatch.setattr(packs, "PACK_SIZE", 1000)
    for n in range(30):
        packed_backend.put(f"k/{n:02}", bytes([n]) * 100, sync=False)
    packed_backend.sync()
    assert len(pack_files(packed_backend)) == 3
    assert all(packed_backend.get(f"k/{n:02}") == bytes([n]) * 100 for n in range(30))


def test_compact_deletes_dead_packs_and_rewrites_mostly_dead_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(packs, "PACK_SIZE", 1000)
    backend = PackingFilesystemBackend(tmp_path, pack_below=4096)
    for n in range(20):  # two full packs
        backend.put(f"k/{n:02}", bytes([n]) * 100, sync=False)
    backend.sync()
    first, second = pack_files(backend)
    for n in range(10):
        backend.delete(f"k/{n:02}")  # all of the first pack
    for n in range(10, 18):
        backend.delete(f"k/{n:02}")  # 80% of the second
    backend.idle_seconds = 0  # as if an hour had passed

    report = backend.compact()

    assert report == {"packs_deleted": 1, "packs_rewritten": 1, "bytes_freed": 1800}
    assert first not in pack_files(backend) and second not in pack_files(backend)
    assert backend.get("k/18") == bytes([18]) * 100 and backend.get("k/19") == bytes([19]) * 100
    assert sorted(backend.iter_keys()) == ["k/18", "k/19"]


def test_compact_leaves_packs_written_recently(packed_backend):
    packed_backend.put("k/a", b"a")
    packed_backend.delete("k/a")
    assert packed_backend.compact() == {"packs_deleted": 0, "packs_rewritten": 0, "bytes_freed": 0}
    assert len(pack_files(packed_backend)) == 1


def test_a_chunk_store_reads_back_what_it_packed(packed_backend, keys, rng):
    store = ChunkStore(packed_backend, keys, "org-a")
    small = rng.randbytes(1000)
    result = store.write_stream([small])
    assert list(store.iter_chunk_ids()) == [result.chunks[0].id]
    assert b"".join(store.read_stream([result.chunks[0].id])) == small
    assert store.put_chunk(small).new is False  # found through the index


def test_a_flipped_byte_in_a_pack_is_detected(packed_backend, keys, rng):
    store = ChunkStore(packed_backend, keys, "org-a")
    ref = store.put_chunk(rng.randbytes(1000))
    (pack,) = pack_files(packed_backend)
    with open(os.path.join(packed_backend.pack_dir, pack), "r+b") as f:
        f.seek(500)
        byte = f.read(1)
        f.seek(500)
        f.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(CorruptChunk, match=ref.id):
        store.get_chunk(ref.id)


def test_a_folder_store_packs_unless_told_not_to(tmp_path):
    assert isinstance(open_backend(str(tmp_path / "a")), PackingFilesystemBackend)
    assert not isinstance(open_backend(str(tmp_path / "b"), pack_below=0), PackingFilesystemBackend)
    assert os.path.isdir(tmp_path / "a" / PACK_DIR)


def test_after_a_failed_fsync_what_the_pack_held_unsynced_is_forgotten(packed_backend, monkeypatch):
    packed_backend.put("k/durable", b"d" * 10)
    packed_backend.put("k/a", b"a" * 10, sync=False)
    real_fsync = os.fsync

    def failing(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="I/O error"):
        packed_backend.sync()
    monkeypatch.setattr(os, "fsync", real_fsync)
    # The kernel may call the lost pages clean: never trust them, never dedup against them.
    assert not packed_backend.exists("k/a")
    packed_backend.put("k/a", b"a" * 10)
    fresh = PackingFilesystemBackend(packed_backend.root)
    assert fresh.get("k/a") == b"a" * 10 and fresh.get("k/durable") == b"d" * 10
    assert len(pack_files(packed_backend)) == 2  # the written again went to a new pack


def test_packs_are_reused_by_later_writers_of_the_process(packed_backend):
    def write(n):
        packed_backend.put(f"k/{n}", b"x" * 10)

    for n in range(5):  # five runs, each with its own thread
        thread = threading.Thread(target=write, args=(n,))
        thread.start()
        thread.join()
    assert len(pack_files(packed_backend)) == 1


def test_compact_keeps_off_a_pack_a_writer_still_holds(tmp_path):
    writer = PackingFilesystemBackend(tmp_path)
    writer.put("k/pending", b"p", sync=False)  # no row yet: the pack looks dead
    compactor = PackingFilesystemBackend(tmp_path, idle_seconds=0)

    assert compactor.compact()["packs_deleted"] == 0
    writer.sync()
    assert compactor.get("k/pending") == b"p"


def test_a_large_put_replaces_a_small_one_not_yet_synced(packed_backend):
    packed_backend.put("k", b"small", sync=False)
    packed_backend.put("k", b"L" * 5000, sync=False)
    packed_backend.sync()
    assert packed_backend.get("k") == b"L" * 5000
    assert PackingFilesystemBackend(packed_backend.root).get("k") == b"L" * 5000


def test_a_forked_worker_does_not_see_what_its_parent_has_not_synced(packed_backend):
    import multiprocessing

    packed_backend.put("k/unsynced", b"u", sync=False)
    context = multiprocessing.get_context("fork")
    result = context.Queue()
    child = context.Process(target=lambda: result.put(packed_backend.exists("k/unsynced")))
    child.start()
    child.join(30)
    assert result.get(timeout=5) is False
    assert packed_backend.exists("k/unsynced")


def test_worker_processes_share_one_index(packed_backend):
    import multiprocessing

    packed_backend.put("k/parent", b"p")  # the backend was in use before the fork

    def child(n):
        for i in range(20):
            packed_backend.put(f"k/{n}-{i:02}", bytes([n, i]), sync=False)
        packed_backend.sync()

    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=child, args=(n,)) for n in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    assert len(list(packed_backend.iter_keys("k/"))) == 61
    assert packed_backend.get("k/2-07") == bytes([2, 7])
    assert len(pack_files(packed_backend)) == 4  # one per process


def test_many_threads_put_and_look_up_at_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    backend = PackingFilesystemBackend(tmp_path, pack_below=4096)

    def work(n):
        for i in range(50):
            assert not backend.exists(f"k/{n}-{i}")  # every thread opens its own connection
            backend.put(f"k/{n}-{i}", bytes([n, i]), sync=False)
            if i % 10 == 0:
                backend.sync()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, range(16)))
    backend.sync()
    assert len(list(PackingFilesystemBackend(tmp_path).iter_keys())) == 800


def test_a_failed_append_leaves_the_pack_and_writes_on_in_a_new_one(packed_backend, monkeypatch):
    packed_backend.put("k/before", b"b" * 10)

    def disk_full(fd, data):
        os.write(fd, bytes(data[:3]))  # a partial write, then the error
        raise OSError("No space left on device")

    monkeypatch.setattr(packs, "_write_all", disk_full)
    with pytest.raises(OSError, match="No space"):
        packed_backend.put("k/failed", b"f" * 10)
    monkeypatch.undo()
    packed_backend.put("k/after", b"a" * 10)

    fresh = PackingFilesystemBackend(packed_backend.root)
    assert fresh.get("k/before") == b"b" * 10 and fresh.get("k/after") == b"a" * 10
    assert not fresh.exists("k/failed") and len(pack_files(packed_backend)) == 2
