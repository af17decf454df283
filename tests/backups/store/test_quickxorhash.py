import base64

import pytest

from backups.store.quickxorhash import QuickXorHash, quickxorhash


def reference_quickxorhash(data: bytes) -> str:
    """The algorithm as docs/GRAPH.md §4 states it, one byte at a time."""
    acc = 0
    for i, byte in enumerate(data):
        shift = (11 * i) % 160
        rotated = byte << shift
        acc ^= (rotated | (rotated >> 160)) & ((1 << 160) - 1)
    out = bytearray(acc.to_bytes(20, "little"))
    for i, length_byte in enumerate(len(data).to_bytes(8, "little")):
        out[12 + i] ^= length_byte
    return base64.b64encode(bytes(out)).decode()


@pytest.mark.parametrize(
    "data_b64, expected",
    [
        ("", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ("Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="),
        ("luBZlaT6", "lgBHFipBCn0AAAAABgAAAAAAAAA="),
        ("T6LYJIfDh81JrAK309H2JMJTXis=", "zBTHrspn3mEcohlJdIUAbjGNaNg="),
    ],
)
def test_it_matches_the_published_vectors(data_b64, expected):
    data = base64.b64decode(data_b64)
    assert quickxorhash(data) == expected
    assert reference_quickxorhash(data) == expected


def test_it_matches_the_reference_for_many_lengths(rng):
    lengths = list(range(0, 400)) + [rng.randrange(400, 20_000) for _ in range(30)]
    for length in lengths:
        data = rng.randbytes(length)
        assert quickxorhash(data) == reference_quickxorhash(data), length


def test_it_gives_the_same_hash_for_any_split_into_updates(rng):
    for _ in range(60):
        data = rng.randbytes(rng.randrange(0, 5000))
        hasher = QuickXorHash()
        position = 0
        while position < len(data):
            step = rng.choice([1, 7, 159, 160, 161, 320, rng.randrange(1, 1000)])
            hasher.update(data[position : position + step])
            position += step
        assert hasher.b64digest() == reference_quickxorhash(data)


def test_it_accepts_any_bytes_like_object(rng):
    data = rng.randbytes(1000)
    hasher = QuickXorHash()
    hasher.update(bytearray(data[:333]))
    hasher.update(memoryview(data)[333:])
    assert hasher.b64digest() == quickxorhash(data)


def test_copy_continues_independently(rng):
    first, second = rng.randbytes(500), rng.randbytes(300)
    hasher = QuickXorHash(first)
    snapshot = hasher.copy()
    hasher.update(second)
    assert snapshot.b64digest() == quickxorhash(first)
    assert hasher.b64digest() == quickxorhash(first + second)
    assert len(hasher.digest()) == 20
