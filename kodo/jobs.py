"""The one life of every job (backup runs, directory jobs, verifications, restores): its statuses,
its badges, and the protocol that lets any number of workers run it safely.

The row is the truth; the broker's message is only a hint:

- `send()` hands the job's task to the broker once its row is committed (the outbox: `sent_at`);
- a worker `claim()`s it with one conditional UPDATE: a queued job, or a running one whose worker
  went silent for KODO_JOB_STALE_SECONDS (a takeover); the claim gets a fresh `claim_token`;
- while it works the worker `beat()`s (the heartbeat, and proof the claim is still its own:
  `LostClaim` when another worker took the job over, `JobCanceled` when it was canceled);
- it ends with `finish(status, error)`, conditional on still holding the claim; `cancel()` ends a
  queued or running job from outside at once.

Recovery (`recover_jobs`, every KODO_RECOVERY_SECONDS from Celery beat) resumes every registered
kind: a running job whose heartbeat is stale is sent again (its next claim takes over) up to
KODO_JOB_MAX_ATTEMPTS claims, then failed with the reason; a queued job never sent is sent, one
sent longer ago than KODO_JOB_RESEND_SECONDS is sent again. Kodo is the lowest layer: each app
registers its job models from its AppConfig (`register`).
"""

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Self

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)


class LostClaim(Exception):
    """Another worker took this job over (ours was presumed dead): stop without writing."""


class JobCanceled(LostClaim):
    """The job was canceled: stop without writing (the cancel already closed the row)."""


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partially succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELED = "canceled", "Canceled"


class Trigger(models.TextChoices):
    MANUAL = "manual", "Backup now"
    SCHEDULE = "schedule", "Schedule"
    COMMAND = "command", "Command"


ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
FINISHED_STATUSES = (
    Status.SUCCEEDED,
    Status.PARTIAL,
    Status.FAILED,
    Status.SKIPPED,
    Status.CANCELED,
)
# The one status -> badge table (CSS class of the badge; active jobs have the plain badge).
BADGES: dict[str, str] = {
    Status.SUCCEEDED: "ok",
    Status.PARTIAL: "warn",
    Status.SKIPPED: "warn",
    Status.FAILED: "bad",
    Status.CANCELED: "bad",
}
# The statuses each filter of the Tasks page means: one per status, named as its badge is.
STATUS_FILTERS = {
    "running": [Status.RUNNING],
    "queued": [Status.QUEUED],
    "succeeded": [Status.SUCCEEDED],
    "partial": [Status.PARTIAL],
    "failed": [Status.FAILED],
    "skipped": [Status.SKIPPED],
    "canceled": [Status.CANCELED],
}


def stale_seconds() -> int:
    return settings.KODO_JOB_STALE_SECONDS


# ----- the registry of job kinds ---------------------------------------------------------------

KINDS: list = []


def register(model):
    """Make `model` (a JobRecord subclass) known to recovery and the Tasks page; called from its
    app's AppConfig.ready."""
    if model not in KINDS:
        KINDS.append(model)
        KINDS.sort(key=lambda kind: kind.position)
    return model


def claimable_kinds():
    return [model for model in KINDS if issubclass(model, Job)]


# ----- the models ----------------------------------------------------------------------------


class JobQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=ACTIVE_STATUSES)

    def silent(self, now=None):
        """Running jobs whose worker has not beaten for KODO_JOB_STALE_SECONDS."""
        stale = (now or timezone.now()) - dt.timedelta(seconds=stale_seconds())
        return self.filter(
            Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True), status=Status.RUNNING
        )

    def unsent(self, now=None):
        """Queued jobs never handed to the broker (after a grace for their on_commit), or handed
        so long ago (KODO_JOB_RESEND_SECONDS) that their message may be lost."""
        now = now or timezone.now()
        resend_before = now - dt.timedelta(seconds=settings.KODO_JOB_RESEND_SECONDS)
        return self.filter(
            Q(sent_at__isnull=True, created_at__lt=now - UNSENT_GRACE)
            | Q(sent_at__lt=resend_before),
            status=Status.QUEUED,
        )


JobManager = models.Manager.from_queryset(JobQuerySet)

# A job saved this recently may still be on its way to the broker (its transaction's on_commit).
UNSENT_GRACE = dt.timedelta(seconds=30)


class JobRecord(models.Model):
    """What every job row has and how every job is shown (the Tasks page's one adapter).

    A kind overrides the presentation members it needs: `kind_label`, `subject`,
    `subject_detail`, `link`, `requester`, `progress_percent`, `progress_text`, `summary`,
    `problem_badge`, `note`, `cancel_url`; and `task_types()` / `tasks_of()` for the Tasks page."""

    Status = Status
    Trigger = Trigger
    ACTIVE_STATUSES = ACTIVE_STATUSES

    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    # Each concrete kind has its manager; django-stubs gives none to abstract models.
    if TYPE_CHECKING:
        objects: ClassVar[models.Manager[Self]]

    class Meta:
        abstract = True

    # -- state ---------------------------------------------------------------------------------
    @property
    def job_status(self) -> str:
        """The status in the job vocabulary (a kind with words of its own maps them here)."""
        return self.status

    @property
    def is_active(self) -> bool:
        return self.job_status in ACTIVE_STATUSES

    @property
    def status_badge(self) -> str:
        return BADGES.get(self.job_status, "")

    @property
    def status_label(self) -> str:
        return self.get_status_display()  # one word per status on every page

    @property
    def duration(self):
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    @property
    def phase_shown(self) -> str:
        return ""

    # -- presentation (the Tasks page) ---------------------------------------------------------
    position = 100  # where the kind's types come in the Tasks page's type filter

    @property
    def kind_label(self) -> str:
        return "Job"

    @property
    def subject(self) -> str:
        return ""

    @property
    def subject_detail(self) -> str:
        return ""

    @property
    def link(self) -> str:
        return ""

    @property
    def cancel_url(self) -> str:
        return ""

    @property
    def note(self) -> str:
        return ""

    @property
    def problem_badge(self) -> str:
        """E.g. "3 failed", shown as a bad badge."""
        return ""

    @property
    def requester(self) -> str:
        return self.get_trigger_display()

    @property
    def progress_percent(self):
        """0-100 while active, or None when the amount of work is not known in advance."""
        return None

    @property
    def progress_text(self) -> str:
        return ""

    @property
    def summary(self) -> str:
        return ""

    @classmethod
    def task_types(cls) -> list:
        """[(filter key, label, {field: value})]: the types this kind shows on the Tasks page."""
        return []

    @classmethod
    def tasks_of(cls, organization, *, user=""):
        """This kind's rows of an organization, matching the Tasks page's user filter (None:
        the kind has no user to filter on)."""
        raise NotImplementedError

    @classmethod
    def statuses_for(cls, job_statuses) -> list:
        """This kind's status values meaning any of `job_statuses`."""
        return list(job_statuses)

    @classmethod
    def load_for_tasks(cls, pks) -> dict:
        return cls.objects.in_bulk(pks)


class Job(JobRecord):
    """A job a worker claims, beats and finishes (see the module's docstring)."""

    heartbeat_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The outbox: when the job's task was last handed to the broker (None: not yet, e.g. the
    # broker was down). Recovery sends again what was never sent or has been lost.
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    phase = models.CharField(max_length=200, blank=True)

    # The fields that take the Celery task's arguments, in order (the first is the pk).
    TASK_ARGS: tuple[str, ...] = ("pk",)
    # What recovery says of a job it gave up on, after "The worker running this …".
    noun = "job"
    gave_up_hint = ""

    if TYPE_CHECKING:
        objects: ClassVar[JobManager[Self]]

    class Meta:
        abstract = True

    # -- the rules -------------------------------------------------------------------------
    @property
    def is_stale(self) -> bool:
        """Active, but nobody has worked on it for a while: its message was lost or its worker
        died. Recovery sends it again; the claim makes that safe."""
        since = timezone.now() - dt.timedelta(seconds=stale_seconds())
        if self.status == Status.RUNNING:
            return self.heartbeat_at is None or self.heartbeat_at < since
        return self.status == Status.QUEUED and (self.sent_at or self.created_at) < since

    @property
    def phase_shown(self) -> str:
        """What the job is doing, in words; a silent worker is said to be lost."""
        if self.status == Status.RUNNING and self.is_stale:
            silent_since = self.heartbeat_at or self.started_at or self.created_at
            resume_by = silent_since + dt.timedelta(
                seconds=stale_seconds() + settings.KODO_RECOVERY_SECONDS
            )
            return (
                f"Worker lost at {timezone.localtime(silent_since):%H:%M}; resuming by "
                f"{timezone.localtime(max(resume_by, timezone.now())):%H:%M} "
                f"(attempt {self.attempts + 1} of {settings.KODO_JOB_MAX_ATTEMPTS})"
            )
        return self.phase

    # -- hooks of a kind -------------------------------------------------------------------
    def closing_fields(self) -> dict:
        """Fields set whenever the job ends (finished, canceled or given up)."""
        return {}

    def takeover_fields(self) -> dict:
        """Fields set when a claim takes the job over from a lost worker (e.g. counters the
        next attempt counts again from zero)."""
        return {}

    @classmethod
    def job_task(cls):
        """The Celery task that runs a job of this kind (called with TASK_ARGS)."""
        raise NotImplementedError

    # -- the protocol ----------------------------------------------------------------------
    def _mine(self):
        return type(self).objects.filter(
            pk=self.pk, claim_token=self.claim_token, status=Status.RUNNING
        )

    def claim(self) -> bool:
        """Take this job if it is queued, or running with a silent worker (a takeover): one
        conditional UPDATE, so only one worker ever holds it. True when this caller holds it
        now (the instance is refreshed)."""
        now = timezone.now()
        token = uuid.uuid4()
        rows = type(self).objects.filter(pk=self.pk)
        claimed = rows.filter(status=Status.QUEUED).update(
            status=Status.RUNNING,
            claim_token=token,
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
        )
        if not claimed:
            claimed = rows.silent(now).update(
                claim_token=token,
                heartbeat_at=now,
                attempts=F("attempts") + 1,
                **self.takeover_fields(),
            )
        self.refresh_from_db(
            fields=[
                "status",
                "claim_token",
                "started_at",
                "heartbeat_at",
                "attempts",
                *self.takeover_fields(),
            ]
        )
        return bool(claimed) and self.claim_token == token

    def beat(self, **fields):
        """Say this worker is alive (and save `fields` with it), if it still holds the claim;
        else raise JobCanceled or LostClaim."""
        if self._mine().update(heartbeat_at=timezone.now(), **fields):
            return
        status = type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()
        if status == Status.CANCELED:
            raise JobCanceled(f"{self._meta.verbose_name} {self.pk} was canceled.")
        raise LostClaim(f"{self._meta.verbose_name} {self.pk} is no longer claimed by this worker.")

    def finish(self, status, error="", **fields) -> bool:
        """End the job this worker holds, with `fields` (e.g. final counters). A job it no longer
        holds (canceled, or taken over) is left as it is: False."""
        values = {
            "status": status,
            "error": error[:5000],
            "finished_at": timezone.now(),
            "phase": "",
            **self.closing_fields(),
            **fields,
        }
        closed = self._mine().update(**values)
        if closed:
            for name, value in values.items():
                setattr(self, name, value)
        return bool(closed)

    def cancel(self, reason: str) -> bool:
        """End a queued or running job now; its worker, if any, stops at its next beat. False
        when it had already finished."""
        values = {
            "status": Status.CANCELED,
            "finished_at": timezone.now(),
            "error": reason,
            "claim_token": None,
            "phase": "",
            **self.closing_fields(),
        }
        canceled = (
            type(self).objects.filter(pk=self.pk, status__in=ACTIVE_STATUSES).update(**values)
        )
        self.refresh_from_db()
        return bool(canceled)

    def give_up(self) -> bool:
        """Fail a running job whose workers kept dying, with the reason. Conditional on the
        heartbeat being the stale one seen, so a worker that just came back keeps its job."""
        heard = self.heartbeat_at or self.started_at or self.created_at
        error = (
            f"The worker running this {self.noun} stopped {self.attempts} times (last "
            f"heard from at {heard:%Y-%m-%d %H:%M} UTC); Kodo gave up. {self.gave_up_hint}"
        )
        return bool(
            type(self)
            .objects.filter(
                pk=self.pk,
                status=Status.RUNNING,
                heartbeat_at=self.heartbeat_at,
            )
            .update(
                status=Status.FAILED,
                finished_at=timezone.now(),
                phase="",
                error=error.strip(),
                **self.closing_fields(),
            )
        )

    def send(self) -> bool:
        return type(self).send_many([tuple(getattr(self, name) for name in self.TASK_ARGS)]) == 1

    @classmethod
    def send_many(cls, rows) -> int:
        """Hand each job's task (rows of TASK_ARGS values) to the broker and record it as sent;
        a job the broker cannot take stays unsent for recovery to send later. Returns how many
        were sent."""
        task = cls.job_task()
        sent: list = []
        for args in rows:
            try:
                task.apply_async(tuple(args), retry=False)
            except OperationalError as error:
                log.warning(
                    "The task queue is unreachable (%s): %d %s stay queued and are "
                    "sent when it is back.",
                    error,
                    len(rows) - len(sent),
                    cls._meta.verbose_name_plural,
                )
                break
            sent.append(args[0])
        if sent:
            cls.objects.filter(pk__in=sent).update(sent_at=timezone.now())
        return len(sent)


# ----- recovery --------------------------------------------------------------------------------

BATCH = 500


@dataclass
class RecoveryReport:
    resumed: int = 0
    sent: int = 0
    failed: int = 0
    by_kind: dict = field(default_factory=dict)

    def __str__(self):
        return (
            f"{self.resumed} jobs resumed after their worker was lost, {self.sent} queued "
            f"jobs sent again, {self.failed} jobs failed after too many attempts"
        )


def recover_jobs(now=None) -> RecoveryReport:
    now = now or timezone.now()
    report = RecoveryReport()
    for model in claimable_kinds():
        lost = model.objects.silent(now)
        worn_out = lost.filter(attempts__gte=settings.KODO_JOB_MAX_ATTEMPTS)
        failed = sum(job.give_up() for job in worn_out.order_by("pk")[:BATCH])
        resumed = model.send_many(_args(model, lost.exclude(pk__in=worn_out.values("pk"))))
        sent = model.send_many(_args(model, model.objects.unsent(now)))
        report.failed += failed
        report.resumed += resumed
        report.sent += sent
        report.by_kind[model._meta.label] = (resumed, sent, failed)
    if report.resumed or report.sent or report.failed:
        log.info("Recovery: %s.", report)
    return report


def _args(model, queryset):
    return list(queryset.order_by("pk").values_list(*model.TASK_ARGS)[:BATCH])
