"""Write development keys to var/kodo.env once (used by `make run`); never overwrite them.

Losing KODO_ENCRYPTION_KEYS makes every stored secret and backup unreadable, so the file is
created only when absent.
"""

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ENV_FILE = Path(__file__).resolve().parent.parent / "var" / "kodo.env"


def main() -> int:
    if ENV_FILE.exists():
        return 0
    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    ENV_FILE.write_text(
        "# Development settings written by `make run`. Keep this file: it holds the keys that\n"
        "# decrypt the secrets and backups stored in var/.\n"
        "DEBUG=1\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        f"KODO_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n"
    )
    ENV_FILE.chmod(0o600)
    print(f"Wrote development keys to {ENV_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
