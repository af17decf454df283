"""Write development keys to var/kodo.env once (used by `make run`); never overwrite them.

Losing KODO_ENCRYPTION_KEYS makes every stored secret and backup unreadable, so the file is
created only when absent.
"""

import os
import secrets
import sys
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
            f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
            f"KODO_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n"
        )
    print(f"Wrote development keys to {ENV_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
