"""Encryption of secrets at rest with the server's keys (KODO_ENCRYPTION_KEYS, newest first).

MultiFernet decrypts with any listed key and encrypts with the first, so keys rotate by adding a
new key in front and running `manage.py rotate_encryption_keys`.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any key in KODO_ENCRYPTION_KEYS."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.KODO_ENCRYPTION_KEYS))


def encrypt(plaintext: bytes) -> bytes:
    return fernet().encrypt(plaintext)


def decrypt(token: bytes) -> bytes:
    try:
        return fernet().decrypt(bytes(token))
    except InvalidToken:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted: is its key still in KODO_ENCRYPTION_KEYS?"
        ) from None


def rotate(token: bytes) -> bytes:
    """Re-encrypt with the newest key (a no-op for the data, a new ciphertext)."""
    return fernet().rotate(bytes(token))


def encrypt_text(plaintext: str) -> bytes:
    return encrypt(plaintext.encode())


def decrypt_text(token: bytes) -> str:
    return decrypt(token).decode()


# Models with fields encrypted by this module, for `manage.py rotate_encryption_keys`:
# (app_label.ModelName, (field, ...)). Apps register theirs in AppConfig.ready().
ENCRYPTED_FIELDS: dict[str, tuple[str, ...]] = {}


def register_encrypted_fields(model_label: str, *fields: str):
    ENCRYPTED_FIELDS[model_label] = tuple(fields)
