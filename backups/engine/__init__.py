"""The OneDrive backup engine: one run of one user's drive.

    delta (from the saved cursor) -> the drive's tree -> what changed -> record renames, moves and
    deletions -> download changed content in parallel, streaming: quickXorHash, chunk, compress,
    encrypt, store -> verify size and hash -> record the version -> save cursor.

Crash safety: a verified file version is recorded only after its chunks are stored, tied to the
run, together with the other downloads that finished meanwhile (one transaction); the delta cursor
moves only when the run completes. A run that dies is continued (same run) by a redelivered task:
the delta is read again from the old cursor, what this run already recorded compares as unchanged,
so nothing is downloaded twice (only the few files not yet recorded when it died).

The modules: plan (the delta, the tree, what to download or compare), download (parallel fetch,
fresh URLs, Range resume, verification), record (outcomes, versions, issues, the end of a run),
run (OneDriveBackup, the claim and its heartbeat, close_run).
"""

from backups.engine.download import (
    BLOCK_SIZE,
    MAX_RESUMES,
    QUEUED_PER_THREAD,
    DownloadFailed,
    Outcome,
    Stopped,
)
from backups.engine.plan import RECORD_BATCH, Item, Plan, Skip, versions_to_compare
from backups.engine.run import LostClaim, OneDriveBackup, RunCanceled, close_run

__all__ = [
    "BLOCK_SIZE",
    "MAX_RESUMES",
    "QUEUED_PER_THREAD",
    "RECORD_BATCH",
    "DownloadFailed",
    "Item",
    "LostClaim",
    "OneDriveBackup",
    "Outcome",
    "Plan",
    "RunCanceled",
    "Skip",
    "Stopped",
    "close_run",
    "versions_to_compare",
]
