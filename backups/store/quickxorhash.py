"""QuickXorHash, the content hash OneDrive reports for every file (docs/GRAPH.md §4).

Byte number i is XORed into a 160-bit accumulator after a left rotation of (11 * i) mod 160 bits.
Because 11 * 160 is a multiple of 160, the rotation depends only on i mod 160: we XOR-fold all bytes
at the same position mod 160 into 160 one-byte cells (numpy, 20 uint64 lanes per 160-byte row, many
GB/s), and apply the 160 rotations once, at digest time.
"""

import base64

import numpy as np

_PERIOD = 160  # bytes; also the accumulator width in bits
_SHIFT = 11
_MASK = (1 << _PERIOD) - 1


class QuickXorHash:
    """A hashlib-style QuickXorHash: update() any number of times, then digest()."""

    name = "quickxorhash"
    digest_size = 20

    def __init__(self, data=b""):
        self._cells = np.zeros(_PERIOD, dtype=np.uint8)
        self._length = 0
        if data:
            self.update(data)

    def update(self, data) -> None:
        view = memoryview(data).cast("B")
        n = len(view)
        if not n:
            return
        arr = np.frombuffer(view, dtype=np.uint8)
        whole = n - n % _PERIOD
        folded = np.zeros(_PERIOD, dtype=np.uint8)
        if whole:
            rows = arr[:whole].view(np.uint64).reshape(-1, _PERIOD // 8)
            folded ^= np.bitwise_xor.reduce(rows, axis=0).view(np.uint8)
        folded[: n - whole] ^= arr[whole:]
        # folded[j] holds stream positions (length + j) mod 160.
        self._cells ^= np.roll(folded, self._length % _PERIOD)
        self._length += n

    def copy(self) -> "QuickXorHash":
        other = QuickXorHash()
        other._cells = self._cells.copy()
        other._length = self._length
        return other

    def digest(self) -> bytes:
        acc = 0
        for position, byte in enumerate(self._cells.tolist()):
            if byte:
                shifted = byte << (position * _SHIFT) % _PERIOD
                acc ^= (shifted & _MASK) | (shifted >> _PERIOD)
        out = bytearray(acc.to_bytes(20, "little"))
        for i, length_byte in enumerate((self._length & (2**64 - 1)).to_bytes(8, "little")):
            out[12 + i] ^= length_byte
        return bytes(out)

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")

    def hexdigest(self) -> str:
        return self.digest().hex()


def quickxorhash(data) -> str:
    """The base64 QuickXorHash of data, as Graph reports it in file.hashes.quickXorHash."""
    return QuickXorHash(data).b64digest()
