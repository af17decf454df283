"""Jobs resume by themselves: the database row is the truth, the broker's message only a hint.

The protocol and the recovery of every kind of job (backup runs, directory jobs, the coming
restores) live in kodo.jobs; each app registers its job models from its AppConfig. This module
keeps the names the backup code and the beat task use.

A run's task is handed to the broker after its row commits (the outbox: `sent_at` records when).
The message can still be lost: the filesystem broker deletes it when a worker fetches it, so a
worker killed with SIGKILL takes it along; Redis keeps it unacknowledged for hours; the broker may
be down when the run is saved. So every KODO_RECOVERY_SECONDS Celery beat runs
`backups.actions.do_recover_jobs`: a running job whose heartbeat is older than
KODO_JOB_STALE_SECONDS is sent again and its next claim takes it over, up to
KODO_JOB_MAX_ATTEMPTS claims, then it is failed with the reason; a queued job never sent is sent,
one sent longer ago than KODO_JOB_RESEND_SECONDS is sent again.
A second delivery is harmless: only one claim succeeds.
"""

from backups.models import BackupRun
from kodo.jobs import RecoveryReport, recover_jobs

__all__ = ["RecoveryReport", "recover_jobs", "send_runs"]


def send_runs(runs) -> int:
    """Send the runs [(run id, organization id)]; see kodo.jobs.Job.send_many."""
    return BackupRun.send_many(list(runs))
