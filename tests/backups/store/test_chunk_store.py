import threading

import pytest

from backups.store import ChunkStore, CorruptChunk, ObjectNotFound, OrgKeys, chunk_id, quickxorhash
from backups.store.chunking import MAX_SIZE, MIN_SIZE

MiB = 1024 * 1024


def blocks(data: bytes, size: int = 300_000):
    for position in range(0, len(data), size):
        yield data[position : position + size]


def chunk_key(store, chunk_id):
    return f"orgs/{store.namespace}/chunks/{chunk_id[:2]}/{chunk_id}"


@pytest.mark.parametrize(
    "size", [0, 1, MIN_SIZE - 1, MIN_SIZE, MIN_SIZE + 1, MAX_SIZE, MAX_SIZE + 1, 20_000_000]
)
def test_streams_round_trip(store, rng, size):
    data = rng.randbytes(size)
    result = store.write_stream(blocks(data))
    assert result.size == size
    assert result.quickxorhash == quickxorhash(data)
    assert b"".join(store.read_stream(ref.id for ref in result.chunks)) == data
    assert sum(ref.size for ref in result.chunks) == size
    assert result.new_bytes_stored == sum(ref.stored_size for ref in result.chunks)


def test_streams_round_trip_on_s3(s3_backend, keys, rng):
    store = ChunkStore(s3_backend, keys, "org-a")
    data = rng.randbytes(3 * MiB)
    result = store.write_stream(blocks(data))
    assert b"".join(store.read_stream(ref.id for ref in result.chunks)) == data
    assert sorted(store.iter_chunk_ids()) == sorted(ref.id for ref in result.chunks)
    store.verify_chunk(result.chunks[0].id)


def test_the_same_stream_twice_stores_nothing_new(store, rng):
    data = rng.randbytes(6 * MiB)
    first = store.write_stream(blocks(data))
    second = store.write_stream(blocks(data, 1 << 20))
    assert first.new_bytes_stored > 0
    assert second.new_bytes_stored == 0
    assert not any(ref.new for ref in second.chunks)
    assert [ref.id for ref in second.chunks] == [ref.id for ref in first.chunks]
    assert [ref.stored_size for ref in second.chunks] == [ref.stored_size for ref in first.chunks]


def test_a_small_insertion_stores_only_a_little_more(store, rng):
    data = rng.randbytes(20 * MiB)
    edited = data[:7_000_000] + b"a few new bytes" + data[7_000_000:]
    store.write_stream(blocks(data))
    result = store.write_stream(blocks(edited))
    assert 0 < result.new_bytes_stored <= 2 * MAX_SIZE
    assert b"".join(store.read_stream(ref.id for ref in result.chunks)) == edited


def test_compressible_chunks_are_stored_compressed(store):
    result = store.write_stream([b"All work and no play. " * 100_000])
    assert result.new_bytes_stored < result.size // 20


def test_chunk_api(store):
    ref = store.put_chunk(b"hello")
    assert ref.new and ref.size == 5
    assert store.has_chunk(ref.id)
    assert store.get_chunk(ref.id) == b"hello"
    assert not store.put_chunk(b"hello").new
    assert list(store.iter_chunk_ids()) == [ref.id]
    store.delete_chunk(ref.id)
    assert not store.has_chunk(ref.id)
    assert list(store.iter_chunk_ids()) == []
    with pytest.raises(ObjectNotFound):
        store.get_chunk(ref.id)
    with pytest.raises(ObjectNotFound):
        store.verify_chunk(ref.id)


def test_chunks_are_fanned_out_under_the_organization(store):
    ref = store.put_chunk(b"hello")
    assert list(store.backend.iter_keys()) == [chunk_key(store, ref.id)]


def test_a_flipped_byte_in_a_stored_chunk_is_detected(store, rng):
    ref = store.put_chunk(rng.randbytes(10_000))
    key = chunk_key(store, ref.id)
    blob = bytearray(store.backend.get(key))
    blob[len(blob) // 2] ^= 0x80
    store.backend.put(key, bytes(blob))
    with pytest.raises(CorruptChunk, match=ref.id):
        store.get_chunk(ref.id)
    with pytest.raises(CorruptChunk):
        store.verify_chunk(ref.id)


def test_a_truncated_chunk_is_detected(store, rng):
    ref = store.put_chunk(rng.randbytes(10_000))
    key = chunk_key(store, ref.id)
    store.backend.put(key, store.backend.get(key)[:-1])
    with pytest.raises(CorruptChunk):
        store.get_chunk(ref.id)


def test_swapped_chunks_are_detected(store, rng):
    first, second = store.put_chunk(rng.randbytes(1000)), store.put_chunk(rng.randbytes(1000))
    first_blob = store.backend.get(chunk_key(store, first.id))
    second_blob = store.backend.get(chunk_key(store, second.id))
    store.backend.put(chunk_key(store, first.id), second_blob)
    store.backend.put(chunk_key(store, second.id), first_blob)
    for ref in (first, second):
        with pytest.raises(CorruptChunk):
            store.verify_chunk(ref.id)


def test_another_organization_can_neither_find_nor_open_a_chunk(store, rng):
    data = rng.randbytes(5000)
    ref = store.put_chunk(data)
    outsider_keys = OrgKeys.generate()
    outsider = ChunkStore(store.backend, outsider_keys, "org-b")
    # Probing with its own key finds nothing: the same content has another id there.
    assert not outsider.has_chunk(chunk_id(outsider_keys, data))
    assert ref.id not in set(outsider.iter_chunk_ids())
    assert not outsider.has_chunk(ref.id)
    # Even pointed at org A's namespace, org B's keys cannot open org A's chunk.
    trespasser = ChunkStore(store.backend, outsider_keys, "org-a")
    with pytest.raises(CorruptChunk):
        trespasser.get_chunk(ref.id)


def test_the_same_content_in_two_organizations_is_two_objects(store, rng):
    data = rng.randbytes(5000)
    outsider = ChunkStore(store.backend, OrgKeys.generate(), "org-b")
    mine, theirs = store.put_chunk(data), outsider.put_chunk(data)
    assert mine.id != theirs.id
    assert mine.new and theirs.new
    assert list(outsider.iter_chunk_ids()) == [theirs.id]


@pytest.mark.parametrize("namespace", ["", "a/b", "..", "x" * 65])
def test_bad_namespaces_are_rejected(fs_backend, keys, namespace):
    with pytest.raises(ValueError):
        ChunkStore(fs_backend, keys, namespace)


@pytest.mark.parametrize("chunk_id", ["", "../etc/passwd", "AB" * 32, "ab" * 31])
def test_bad_chunk_ids_are_rejected(store, chunk_id):
    with pytest.raises(ValueError):
        store.get_chunk(chunk_id)


def test_concurrent_streams_on_one_store(store, rng):
    streams = [rng.randbytes(rng.randrange(1, 4 * MiB)) for _ in range(6)]
    shared = rng.randbytes(2 * MiB)
    streams += [shared, shared]
    results = [None] * len(streams)
    errors = []

    def write(i):
        try:
            results[i] = store.write_stream(blocks(streams[i]))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(streams))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for data, result in zip(streams, results, strict=True):
        assert result.quickxorhash == quickxorhash(data)
        assert b"".join(store.read_stream(ref.id for ref in result.chunks)) == data


def test_a_failing_backend_fails_the_stream(store, rng, monkeypatch):
    class Unavailable(Exception):
        pass

    def fail(key, data, **kwargs):
        raise Unavailable()

    monkeypatch.setattr(store.backend, "put", fail)
    with pytest.raises(Unavailable):
        store.write_stream(blocks(rng.randbytes(8 * MiB)))


def test_a_deferred_stream_is_durable_after_sync(store, rng, monkeypatch):
    calls = []
    real = store.backend.sync
    monkeypatch.setattr(store.backend, "sync", lambda: (calls.append("sync"), real()))
    data = rng.randbytes(3 * MiB)
    result = store.write_stream(blocks(data), defer_sync=True)
    assert calls == []  # left to the caller
    store.sync()
    assert calls == ["sync"]
    assert b"".join(store.read_stream(ref.id for ref in result.chunks)) == data
    store.write_stream(blocks(rng.randbytes(MiB)))  # not deferred: synced before it returns
    assert calls == ["sync", "sync"]


def test_a_backend_without_sync_still_works(keys, rng):
    class Plain:  # a minimal backend: put(key, data), nothing else deferred
        def __init__(self):
            self.objects = {}

        def put(self, key, data):
            self.objects[key] = bytes(data)

        def get(self, key):
            return self.objects[key]

        def size(self, key):
            from backups.store import ObjectNotFound

            if key not in self.objects:
                raise ObjectNotFound(key)
            return len(self.objects[key])

    store = ChunkStore(Plain(), keys, "org-a")
    data = rng.randbytes(2 * MiB)
    result = store.write_stream(blocks(data), defer_sync=True)
    store.sync()
    assert b"".join(store.read_stream(ref.id for ref in result.chunks)) == data
