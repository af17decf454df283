"""Deterministic file bytes, generated on demand and never held per file.

Every generated file is a window of a fixed pseudo-random pool (POOL_SIZE bytes, a multiple
of 160) starting at an offset derived from the file's identity and content version, wrapping
around the pool when longer. Streaming is memoryview slicing. The QuickXorHash of any window
costs O(160): a running XOR of the pool's 160-byte rows gives the lanes of any range of whole
rows, and a full turn of the pool always lands on the same lanes because POOL_SIZE % 160 == 0.
"""

import numpy as np

from .quickxor import WIDTH, fold_lanes, xor_lanes

POOL_SIZE = WIDTH * 204800  # 32,768,000 bytes
POOL_SEED = 0x6D333635
CHUNK = 1 << 20

_M64 = (1 << 64) - 1


def mix64(*values):
    """splitmix64 over a few integers: a cheap, well-spread deterministic hash."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & _M64)) & _M64
        h = (h + 0x9E3779B97F4A7C15) & _M64
        z = h
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        h = z ^ (z >> 31)
    return h


class ContentPool:
    def __init__(self, seed=POOL_SEED):
        rng = np.random.default_rng(seed)
        array = rng.integers(0, 256, POOL_SIZE, dtype=np.uint8)
        self.data = array.tobytes()
        self.view = memoryview(self.data)
        self.array = np.frombuffer(self.data, np.uint8)
        rows = self.array.reshape(-1, WIDTH).view(np.uint64)
        # prefix[k] = XOR of rows 0..k-1 (prefix[0] = zeros)
        prefix = np.zeros((rows.shape[0] + 1, WIDTH // 8), np.uint64)
        np.bitwise_xor.accumulate(rows, axis=0, out=prefix[1:])
        self.prefix = prefix.view(np.uint8)
        self.full_lanes = self.prefix[-1].copy()

    def _range_lanes(self, a, b):
        """Lanes (by pool position mod 160) of pool[a:b], 0 <= a <= b <= POOL_SIZE."""
        first_row = -(-a // WIDTH)
        last_row = b // WIDTH
        if first_row > last_row:
            return xor_lanes(self.view[a:b], a)
        lanes = self.prefix[last_row] ^ self.prefix[first_row]
        head_end = first_row * WIDTH
        if head_end > a:
            lanes = lanes ^ xor_lanes(self.view[a:head_end], a)
        tail_start = last_row * WIDTH
        if b > tail_start:
            lanes = lanes ^ xor_lanes(self.view[tail_start:b], 0)
        return lanes

    def quickxorhash(self, offset, length):
        """QuickXorHash of the `length` bytes starting at pool offset `offset` (wrapping)."""
        offset %= POOL_SIZE
        first = min(length, POOL_SIZE - offset)
        lanes = self._range_lanes(offset, offset + first)
        remaining = length - first
        if (remaining // POOL_SIZE) % 2:
            lanes = lanes ^ self.full_lanes
        lanes = lanes ^ self._range_lanes(0, remaining % POOL_SIZE)
        # lane of pool position p holds file position p - offset
        return fold_lanes(np.roll(lanes, -(offset % WIDTH)), length)

    def chunks(self, offset, start, end, chunk=CHUNK):
        """memoryviews covering bytes [start, end) of the window starting at `offset`."""
        position = (offset + start) % POOL_SIZE
        remaining = end - start
        while remaining > 0:
            take = min(chunk, POOL_SIZE - position, remaining)
            yield self.view[position : position + take]
            remaining -= take
            position = (position + take) % POOL_SIZE

    def read(self, offset, length):
        return b"".join(bytes(c) for c in self.chunks(offset, 0, length))


_pool = None


def get_pool():
    global _pool
    if _pool is None:
        _pool = ContentPool()
    return _pool
