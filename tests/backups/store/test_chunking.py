import pytest

from backups.store.chunking import MAX_SIZE, MIN_SIZE, Chunker


def split(data: bytes, sizes):
    position, i = 0, 0
    while position < len(data):
        size = sizes[i % len(sizes)]
        yield data[position : position + size]
        position += size
        i += 1


def test_chunks_reassemble_the_stream_within_size_bounds(rng):
    data = rng.randbytes(12 * 1024 * 1024)
    chunks = list(Chunker().chunks(split(data, [1 << 20])))
    assert b"".join(chunks) == data
    assert all(MIN_SIZE <= len(chunk) <= MAX_SIZE for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= MAX_SIZE


def test_cut_points_do_not_depend_on_how_the_stream_is_split(rng):
    data = rng.randbytes(10 * 1024 * 1024)
    expected = list(Chunker().chunks([data]))
    for sizes in ([1000], [65536, 3, 1 << 20], [7 * 1024 * 1024], [MAX_SIZE * 4 + 1]):
        assert list(Chunker().chunks(split(data, sizes))) == expected


@pytest.mark.parametrize("size", [0, 1, MIN_SIZE - 1, MIN_SIZE, MAX_SIZE, MAX_SIZE + 1])
def test_small_and_boundary_streams(rng, size):
    data = rng.randbytes(size)
    chunks = list(Chunker().chunks(split(data, [4096])))
    assert b"".join(chunks) == data
    assert all(chunks)


def test_a_stream_of_zeros_is_cut_at_max_size():
    chunks = list(Chunker().chunks([bytes(3 * MAX_SIZE + 5)]))
    assert [len(chunk) for chunk in chunks] == [MAX_SIZE, MAX_SIZE, MAX_SIZE, 5]


def test_an_insertion_changes_only_nearby_chunks(rng):
    data = rng.randbytes(16 * 1024 * 1024)
    edited = data[:5_000_000] + b"inserted!" + data[5_000_000:]
    before = set(Chunker().chunks([data]))
    after = list(Chunker().chunks([edited]))
    changed = sum(len(chunk) for chunk in after if chunk not in before)
    assert changed <= 2 * MAX_SIZE


def test_it_rejects_inconsistent_sizes():
    with pytest.raises(ValueError):
        Chunker(min_size=2 << 20, avg_size=1 << 20, max_size=4 << 20)
