"""Backup settings (kodo/settings.py reads them from the environment and checks them).

KODO_BACKUP_DOWNLOAD_THREADS   parallel downloads per run (default 8)
KODO_JOB_STALE_SECONDS         a running job (of any kind) whose heartbeat is older than this may
                               be taken over (kodo.jobs; default 120)
KODO_BACKUP_DOWNLOAD_ATTEMPTS  whole-file attempts before a file is recorded as failed (default 3)
"""

from django.conf import settings


def download_threads() -> int:
    return settings.KODO_BACKUP_DOWNLOAD_THREADS


def stale_seconds() -> int:
    return settings.KODO_JOB_STALE_SECONDS


def download_attempts() -> int:
    return settings.KODO_BACKUP_DOWNLOAD_ATTEMPTS


HEARTBEAT_SECONDS = 10
