"""Per-organization key material for the chunk store.

An organization has two independent 32-byte keys: the data key (AEAD encryption of chunks) and the
id key (keyed hash giving chunk ids). Keeping them apart means a chunk id never reveals anything
usable against the ciphertext. Wrapping these bytes with KODO_ENCRYPTION_KEYS is the Django layer's
job; this module only deals in raw bytes.
"""

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_SIZE = 32
_SERIAL_VERSION = 1
_SERIAL_SIZE = 1 + 2 * KEY_SIZE


@dataclass(frozen=True, repr=False)
class OrgKeys:
    data_key: bytes
    id_key: bytes

    def __post_init__(self):
        for name in ("data_key", "id_key"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != KEY_SIZE:
                raise ValueError(f"OrgKeys.{name} must be {KEY_SIZE} bytes.")

    def __repr__(self) -> str:
        return "OrgKeys(<secret>)"

    @classmethod
    def generate(cls) -> "OrgKeys":
        return cls(data_key=os.urandom(KEY_SIZE), id_key=os.urandom(KEY_SIZE))

    @classmethod
    def from_master(cls, master: bytes) -> "OrgKeys":
        """Derive both keys from one secret of at least 32 bytes (HKDF-SHA256)."""
        if len(master) < KEY_SIZE:
            raise ValueError(f"The master secret must be at least {KEY_SIZE} bytes.")
        return cls(
            data_key=_hkdf(master, b"kodo store data key v1"),
            id_key=_hkdf(master, b"kodo store id key v1"),
        )

    def to_bytes(self) -> bytes:
        return bytes([_SERIAL_VERSION]) + self.data_key + self.id_key

    @classmethod
    def from_bytes(cls, raw: bytes) -> "OrgKeys":
        raw = bytes(raw)
        if len(raw) != _SERIAL_SIZE or raw[0] != _SERIAL_VERSION:
            raise ValueError("These bytes are not serialized OrgKeys (wrong length or version).")
        return cls(data_key=raw[1 : 1 + KEY_SIZE], id_key=raw[1 + KEY_SIZE :])


def _hkdf(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=info).derive(master)
