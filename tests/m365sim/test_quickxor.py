import base64
import random

import pytest

from m365sim.content import POOL_SIZE, get_pool
from m365sim.quickxor import QuickXorHash, quickxorhash, quickxorhash_reference

VECTORS = [
    ("", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    ("Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="),
    ("luBZlaT6", "lgBHFipBCn0AAAAABgAAAAAAAAA="),
    ("T6LYJIfDh81JrAK309H2JMJTXis=", "zBTHrspn3mEcohlJdIUAbjGNaNg="),
]


@pytest.mark.parametrize("data, expected", VECTORS)
def test_it_matches_the_published_vectors(data, expected):
    raw = base64.b64decode(data)
    assert quickxorhash(raw) == expected
    assert quickxorhash_reference(raw) == expected


def test_fast_and_bit_by_bit_implementations_agree():
    rng = random.Random(11)
    for length in [1, 19, 159, 160, 161, 319, 320, 321, 1000, 4099]:
        data = rng.randbytes(length)
        assert quickxorhash(data) == quickxorhash_reference(data)


def test_incremental_hashing_matches_one_shot():
    data = random.Random(5).randbytes(100_003)
    hasher = QuickXorHash()
    for start in range(0, len(data), 777):
        hasher.update(data[start : start + 777])
    assert hasher.b64digest() == quickxorhash(data)


def test_generated_content_hashes_like_its_bytes():
    pool = get_pool()
    rng = random.Random(3)
    cases = [
        (0, 0),
        (POOL_SIZE - 10, 25),
        (POOL_SIZE - 1000, POOL_SIZE + 5000),
        (17, 2 * POOL_SIZE + 3),
    ]
    cases += [(rng.randrange(POOL_SIZE), rng.randrange(300_000)) for _ in range(30)]
    for offset, length in cases:
        assert pool.quickxorhash(offset, length) == quickxorhash(pool.read(offset, length)), (
            offset,
            length,
        )
