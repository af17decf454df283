"""Checks on secrets read at start-up. A bad value stops Kodo with a message naming the variable."""

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

# Used only with DEBUG on and nothing configured, so `manage.py` works on a laptop out of the box.
_DEBUG_ONLY_SECRET_KEY = "debug-only-insecure-secret-key-set-SECRET_KEY-in-production"
_DEBUG_ONLY_FERNET_KEY = "ZGVidWctb25seS1pbnNlY3VyZS1mZXJuZXQta2V5ISE="


def check_secret_key(value: str, *, debug: bool) -> str:
    if not value:
        if debug:
            return _DEBUG_ONLY_SECRET_KEY
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    if len(value) < 32 or len(set(value)) < 5:
        raise ImproperlyConfigured(
            "SECRET_KEY is too short or too simple: use 32 or more random characters."
        )
    return value


def check_fernet_keys(values: list[str], *, debug: bool) -> list[str]:
    keys = [v.strip() for v in values if v.strip()]
    if not keys:
        if debug:
            return [_DEBUG_ONLY_FERNET_KEY]
        raise ImproperlyConfigured(
            "KODO_ENCRYPTION_KEYS is not set. Set it to one or more comma-separated Fernet keys, "
            "newest first (python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')."
        )
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"KODO_ENCRYPTION_KEYS: key number {position} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes)."
            ) from None
    return keys
