"""Checks on secrets read at start-up. A bad value stops Kodo with a message naming the variable."""

import os
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

# Used only with DEBUG on and nothing configured, so `manage.py` works on a laptop out of the box.
_DEBUG_ONLY_SECRET_KEY = "debug-only-insecure-secret-key-set-SECRET_KEY-in-production"
_DEBUG_ONLY_FERNET_KEY = "ZGVidWctb25seS1pbnNlY3VyZS1mZXJuZXQta2V5ISE="


def read_env_file(name: str, *, base_dir: Path) -> Path | None:
    """Read KODO_ENV_FILE (relative to the checkout) into the environment, without overriding
    what is set; None when the variable is empty."""
    if not name:
        return None
    path = Path(name) if Path(name).is_absolute() else base_dir / name
    if not path.is_file():
        raise ImproperlyConfigured(f"KODO_ENV_FILE: there is no file {path}.")
    environ.Env.read_env(path, overwrite=False)
    return path


def create_private_file(name: str):
    """Create the file readable by its owner only, if it is not there yet (and can be)."""
    path = Path(name)
    if name == ":memory:" or name.startswith("file:") or not path.parent.is_dir():
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def check_secret_key(value: str, *, debug: bool, hint: str = "") -> str:
    if not value:
        if debug:
            return _DEBUG_ONLY_SECRET_KEY
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')." + hint
        )
    if len(value) < 32 or len(set(value)) < 5:
        raise ImproperlyConfigured(
            "SECRET_KEY is too short or too simple: use 32 or more random characters."
        )
    return value


def check_fernet_keys(values: list[str], *, debug: bool, hint: str = "") -> list[str]:
    keys = [v.strip() for v in values if v.strip()]
    if not keys:
        if debug:
            return [_DEBUG_ONLY_FERNET_KEY]
        raise ImproperlyConfigured(
            "KODO_ENCRYPTION_KEYS is not set. Set it to one or more comma-separated Fernet keys, "
            "newest first (python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')." + hint
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
