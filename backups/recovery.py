"""Jobs resume by themselves: the database row is the truth, the broker's message only a hint.

A run's task is handed to the broker after its row commits (the outbox: `sent_at` records when).
The message can still be lost: the filesystem broker deletes it when a worker fetches it, so a
worker killed with SIGKILL takes it along; Redis keeps it unacknowledged for hours; the broker may
be down when the run is saved. So every KODO_RECOVERY_SECONDS Celery beat runs `do_recover_jobs`:

- a running run whose heartbeat is older than KODO_BACKUP_STALE_SECONDS lost its worker: it is
  sent again and the next worker takes it over (backups.actions.claim_run), continuing where the
  store and the recorded versions say it was; after KODO_JOB_MAX_ATTEMPTS claims it is failed,
  with the reason;
- a queued run that was never sent (broker down) is sent; one sent longer ago than
  KODO_JOB_RESEND_SECONDS is sent again (its message may be gone).

A second delivery of a run is harmless: only one claim succeeds.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from backups.models import BackupRun

log = logging.getLogger(__name__)

# A run saved this recently may still be on its way to the broker (its transaction's on_commit).
UNSENT_GRACE = dt.timedelta(seconds=30)
BATCH = 500


def send_runs(runs) -> int:
    """Hand each run's task to the broker and record it as sent; a run the broker cannot take
    stays unsent for recovery to send later. Returns how many were sent."""
    from backups.tasks import run_backup

    sent = []
    for run_id, organization_id in runs:
        try:
            run_backup.apply_async((run_id, organization_id), retry=False)
        except OperationalError as error:
            log.warning("The task queue is unreachable (%s): %d backup runs stay queued and are "
                        "sent when it is back.", error, len(runs) - len(sent))
            break
        sent.append(run_id)
    if sent:
        BackupRun.objects.filter(pk__in=sent).update(sent_at=timezone.now())
    return len(sent)


@dataclass
class RecoveryReport:
    resumed: int = 0
    sent: int = 0
    failed: int = 0

    def __str__(self):
        return (f"{self.resumed} runs resumed after their worker was lost, {self.sent} queued "
                f"runs sent again, {self.failed} runs failed after too many attempts")


def do_recover_jobs(now=None) -> RecoveryReport:
    now = now or timezone.now()
    report = RecoveryReport()
    stale = now - dt.timedelta(seconds=settings.KODO_BACKUP_STALE_SECONDS)
    lost = BackupRun.objects.filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True),
        status=BackupRun.Status.RUNNING,
    )
    worn_out = lost.filter(attempts__gte=settings.KODO_JOB_MAX_ATTEMPTS)
    report.failed = _fail_worn_out(worn_out)
    report.resumed = send_runs(_ids(lost.exclude(pk__in=worn_out.values("pk"))))

    resend_before = now - dt.timedelta(seconds=settings.KODO_JOB_RESEND_SECONDS)
    unsent = BackupRun.objects.filter(
        Q(sent_at__isnull=True, created_at__lt=now - UNSENT_GRACE) | Q(sent_at__lt=resend_before),
        status=BackupRun.Status.QUEUED,
    )
    report.sent = send_runs(_ids(unsent))
    if report.resumed or report.sent or report.failed:
        log.info("Recovery: %s.", report)
    return report


def _ids(queryset):
    return list(queryset.order_by("pk").values_list("pk", "organization_id")[:BATCH])


def _fail_worn_out(queryset) -> int:
    """Close runs whose workers kept dying. Conditional on the heartbeat still being stale, so a
    worker that just came back to life keeps its run."""
    failed = 0
    for run in queryset.order_by("pk")[:BATCH]:
        heard = run.heartbeat_at or run.started_at or run.created_at
        closed = BackupRun.objects.filter(
            pk=run.pk, status=BackupRun.Status.RUNNING, heartbeat_at=run.heartbeat_at,
        ).update(
            status=BackupRun.Status.FAILED, active_user=None, phase="",
            finished_at=timezone.now(),
            error=(f"The worker running this backup stopped {run.attempts} times (last heard "
                   f"from at {heard:%Y-%m-%d %H:%M} UTC); Kodo gave up. The next "
                   "backup continues from what was stored."),
        )
        failed += closed
    return failed
