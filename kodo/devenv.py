"""Write development keys to var/kodo.env once (used by `make run`); never overwrite them.

Losing KODO_ENCRYPTION_KEYS makes every stored secret and backup unreadable, so the file is
created only when absent.
"""

import os
import secrets
import sys
import uuid
from pathlib import Path

from cryptography.fernet import Fernet

ENV_FILE = Path(__file__).resolve().parent.parent / "var" / "kodo.env"


def main() -> int:
    if ENV_FILE.exists():
        return 0
    ENV_FILE.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Created owner-only, before a key is written into it.
    with os.fdopen(os.open(ENV_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "w") as file:
        file.write(
            "# Development settings written by `make run`. Keep this file: it holds the keys\n"
            "# that decrypt the secrets and backups stored in var/. Read only by commands run\n"
            "# with KODO_ENV_FILE=var/kodo.env (the Makefile's).\n"
            "DEBUG=1\n"
            "KODO_REQUIRE_TWO_FACTOR_FOR_ADMINS=0\n"
            f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
            f"KODO_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n"
        )
    ensure_microsoft_signin(ENV_FILE)
    print(f"Wrote development keys to {ENV_FILE}")
    return 0


def ensure_microsoft_signin(path: Path, authority: str = "https://127.0.0.1:9443") -> dict:
    """Sign in with Microsoft for the demo: the server app's id and secret (registered in
    m365sim by `manage.py create_demo`) and m365sim as the authority, trusted through its CA.
    Appended once to an env file that has none (the keys above it are never touched); returns
    the file's KODO_MICROSOFT_SIGNIN_* values."""
    lines = path.read_text().splitlines()
    values = {
        name: value
        for name, _, value in (line.partition("=") for line in lines if "=" in line)
        if name.startswith("KODO_MICROSOFT_SIGNIN_")
    }
    if "KODO_MICROSOFT_SIGNIN_CLIENT_ID" in values:
        return values
    added = {
        "KODO_MICROSOFT_SIGNIN_CLIENT_ID": str(uuid.uuid4()),
        "KODO_MICROSOFT_SIGNIN_CLIENT_SECRET": secrets.token_urlsafe(30),
        "KODO_MICROSOFT_SIGNIN_AUTHORITY": authority,
        "KODO_MICROSOFT_SIGNIN_CA_FILE": "var/m365sim/ca.pem",
    }
    with path.open("a") as file:
        file.write(
            "# Sign in with Microsoft against m365sim (create_demo registers the app there)\n"
            + "".join(f"{name}={value}\n" for name, value in added.items())
        )
    return added


if __name__ == "__main__":
    sys.exit(main())
