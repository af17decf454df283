"""QuickXorHash throughput on one core, against hashlib.sha1 and the naive byte loop.

Run: python bench/bench_quickxorhash.py [megabytes]   (default 512)
"""

import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from backups.store.quickxorhash import QuickXorHash, quickxorhash  # noqa: E402

MB = 1_000_000


def naive_quickxorhash(data: bytes) -> bytes:
    acc = 0
    for i, byte in enumerate(data):
        rotated = byte << (11 * i) % 160
        acc ^= (rotated | (rotated >> 160)) & ((1 << 160) - 1)
    out = bytearray(acc.to_bytes(20, "little"))
    for i, length_byte in enumerate(len(data).to_bytes(8, "little")):
        out[12 + i] ^= length_byte
    return bytes(out)


def rate(size: int, seconds: float) -> float:
    return size / seconds / MB


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 512
    data = os.urandom(megabytes * MB)
    block = 1 << 20

    def streamed():
        hasher = QuickXorHash()
        view = memoryview(data)
        for position in range(0, len(view), block):
            hasher.update(view[position : position + block])
        return hasher.b64digest()

    whole = min(timed(lambda: quickxorhash(data)) for _ in range(3))
    stream = min(timed(streamed) for _ in range(3))
    sha1 = min(timed(lambda: hashlib.sha1(data).digest()) for _ in range(3))  # noqa: S324
    sample = data[: 1 << 20]
    naive = timed(lambda: naive_quickxorhash(sample))
    assert QuickXorHash(sample).digest() == naive_quickxorhash(sample)

    print(f"data: {megabytes} MB random, one core")
    print(f"quickxorhash, one update:     {rate(len(data), whole):8.0f} MB/s")
    print(f"quickxorhash, 1 MiB updates:  {rate(len(data), stream):8.0f} MB/s")
    print(f"hashlib.sha1 (baseline):      {rate(len(data), sha1):8.0f} MB/s")
    print(f"naive pure Python (1 MiB):    {rate(len(sample), naive):8.2f} MB/s")
    print(f"ratio streamed / sha1:        {sha1 / stream:8.2f}x")
    print(f"ratio streamed / naive:       {naive / len(sample) * len(data) / stream:8.0f}x")


if __name__ == "__main__":
    main()
