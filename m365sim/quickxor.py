"""QuickXorHash, as OneDrive for Business computes it (docs/GRAPH.md §4).

Byte number i is XORed into a 160-bit accumulator rotated left by (11 * i) mod 160 bits.
The rotation repeats every 160 bytes, so every byte is first XORed into one of 160
per-position lanes (numpy does that fast) and the lanes are rotated into place once.
"""

import base64

import numpy as np

WIDTH = 160
_MASK = (1 << WIDTH) - 1
_SHIFTS = [(11 * j) % WIDTH for j in range(WIDTH)]


def fold_lanes(lanes, length):
    """The hash (base64 text) of a byte stream of `length` bytes whose byte i was XORed
    into lanes[i % 160]."""
    acc = 0
    for j, value in enumerate(bytes(lanes)):
        if value:
            acc ^= value << _SHIFTS[j]
    acc = (acc & _MASK) ^ (acc >> WIDTH)
    digest = bytearray(acc.to_bytes(20, "little"))
    for k, b in enumerate(length.to_bytes(8, "little")):
        digest[12 + k] ^= b
    return base64.b64encode(bytes(digest)).decode("ascii")


def xor_lanes(data, start=0):
    """160 lanes (uint8) holding the XOR of every byte of `data`, byte k going to lane
    (start + k) % 160."""
    lanes = np.zeros(WIDTH, np.uint8)
    a = np.frombuffer(data, np.uint8)
    if not len(a):
        return lanes
    start %= WIDTH
    head = min(len(a), (WIDTH - start) % WIDTH)
    if head:
        lanes[start : start + head] ^= a[:head]
    rest = a[head:]
    full = len(rest) // WIDTH * WIDTH
    if full:
        rows = rest[:full].reshape(-1, WIDTH)
        lanes ^= np.bitwise_xor.reduce(
            rows.view(np.uint64) if rows.ctypes.data % 8 == 0 else rows.copy().view(np.uint64),
            axis=0,
        ).view(np.uint8)
    tail = rest[full:]
    if len(tail):
        lanes[: len(tail)] ^= tail
    return lanes


class QuickXorHash:
    """Incremental hasher: update(bytes) then b64digest()."""

    def __init__(self):
        self.lanes = np.zeros(WIDTH, np.uint8)
        self.length = 0

    def update(self, data):
        self.lanes ^= xor_lanes(data, self.length)
        self.length += len(data)

    def b64digest(self):
        return fold_lanes(self.lanes, self.length)


def quickxorhash(data):
    """Base64 QuickXorHash of `data`."""
    return fold_lanes(xor_lanes(data), len(data))


def quickxorhash_reference(data):
    """Bit-by-bit implementation straight from Microsoft's description, for tests."""
    acc = 0
    for i, b in enumerate(data):
        shift = (11 * i) % WIDTH
        rotated = b << shift
        acc ^= (rotated & _MASK) | (rotated >> WIDTH)
    digest = bytearray(acc.to_bytes(20, "little"))
    for k, b in enumerate(len(data).to_bytes(8, "little")):
        digest[12 + k] ^= b
    return base64.b64encode(bytes(digest)).decode("ascii")
