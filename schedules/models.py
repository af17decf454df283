import datetime as dt
import uuid
import zoneinfo

from django.db import models
from django.utils import timezone

from kodo import jobs
from o365.models import Configuration, DirectoryUser
from organizations.models import Organization


class ScheduleQuerySet(models.QuerySet):
    def for_organization(self, organization):
        return self.filter(organization=organization)


class Schedule(models.Model):
    """A backup schedule made with the + ADD SCHEDULE wizard; it owns one Celery beat entry."""

    class Scope(models.TextChoices):
        ALL = "all", "All users"
        CHOSEN = "chosen", "Chosen users"

    class Frequency(models.TextChoices):
        DAILY = "daily", "Daily at a time"
        WEEKLY = "weekly", "Weekly on chosen days"
        HOURLY = "hourly", "Every N hours"

    class RetentionUnit(models.TextChoices):
        DAYS = "days", "days"
        MONTHS = "months", "months"
        YEARS = "years", "years"

    class Notify(models.TextChoices):
        FAILURE = "failure", "Only when a backup fails"
        WARNING = "warning", "When a backup fails or has warnings"
        ALWAYS = "always", "After every firing"
        NEVER = "never", "Never"

    WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="schedules"
    )
    configuration = models.ForeignKey(
        Configuration,
        on_delete=models.CASCADE,
        related_name="schedules",
        verbose_name="configuration",
    )
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)

    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.ALL)
    users = models.ManyToManyField(DirectoryUser, blank=True, related_name="schedules")
    include_new_users = models.BooleanField(
        "New users automatically",
        default=False,
        help_text="Also back up users imported after this schedule was saved.",
    )

    frequency = models.CharField(max_length=8, choices=Frequency.choices, default=Frequency.DAILY)
    time = models.TimeField(default=dt.time(22, 0))
    weekdays = models.JSONField(default=list, blank=True)  # 0 = Monday ... 6 = Sunday
    every_hours = models.PositiveSmallIntegerField(default=6)
    start_date = models.DateField(default=dt.date.today)
    time_zone = models.CharField(max_length=64, default="UTC")

    keep_versions = models.PositiveIntegerField(
        "Versions to keep per file",
        default=30,
        help_text="Older versions of a file beyond this number are pruned.",
    )
    keep_deleted_for = models.PositiveIntegerField("Keep deleted items for", default=1)
    keep_deleted_unit = models.CharField(
        max_length=6, choices=RetentionUnit.choices, default=RetentionUnit.YEARS
    )
    notify = models.CharField(
        "Email the organization's admins",
        max_length=8,
        choices=Notify.choices,
        default=Notify.FAILURE,
    )

    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="schedule_name_per_org"),
        ]

    def __str__(self):
        return self.name

    @property
    def tz(self):
        return zoneinfo.ZoneInfo(self.time_zone)

    def describe_when(self) -> str:
        at = f"{self.time:%H:%M} {self.time_zone}"
        if self.frequency == self.Frequency.DAILY:
            return f"Daily at {at}"
        if self.frequency == self.Frequency.WEEKLY:
            days = ", ".join(self.WEEKDAYS[d][:3] for d in sorted(self.weekdays))
            return f"Weekly on {days} at {at}"
        return f"Every {self.every_hours} hours from {at}"

    def describe_what(self) -> str:
        if self.scope == self.Scope.ALL:
            return "All users"
        count = getattr(self, "chosen_count", None)  # annotated by the list
        if count is None:
            count = self.users.count()
        text = f"{count} chosen user{'s' if count != 1 else ''}"
        return text + " and new users" if self.include_new_users else text

    def keep_deleted_timedelta(self) -> dt.timedelta:
        days = {"days": 1, "months": 30, "years": 365}[self.keep_deleted_unit]
        return dt.timedelta(days=self.keep_deleted_for * days)

    def next_run_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The next firing after `moment` (aware), in UTC, as beat computes it in local time."""
        if not self.enabled:
            return None
        tz = self.tz
        if self.frequency == self.Frequency.HOURLY:
            # An interval: every N real hours from the first firing, whatever the clocks do.
            first = dt.datetime.combine(self.start_date, self.time, tz).astimezone(dt.UTC)
            if moment < first:
                return first
            step = dt.timedelta(hours=self.every_hours)
            return first + step * ((moment - first) // step + 1)
        day = max(moment.astimezone(tz).date(), self.start_date)
        for _ in range(400):
            candidate = dt.datetime.combine(day, self.time, tz)
            allowed = self.frequency == self.Frequency.DAILY or candidate.weekday() in self.weekdays
            if allowed and candidate.astimezone(dt.UTC) > moment:
                return candidate.astimezone(dt.UTC)
            day += dt.timedelta(days=1)
        return None

    def next_runs(self, count: int = 5, after: dt.datetime | None = None) -> list[dt.datetime]:
        """The next `count` firings after `after` (default: now), in the schedule's time zone;
        the same computation as the list's next run (and as beat's, see tests/schedules)."""
        moment = after or timezone.now()
        runs: list[dt.datetime] = []
        while len(runs) < count:
            following = self.next_run_after(moment)
            if following is None:
                break
            runs.append(following.astimezone(self.tz))
            moment = following
        return runs

    def users_for_firing(self, now=None):
        """The directory users this firing backs up: present, with a OneDrive, not checked yet,
        or found without one longer ago than KODO_ONEDRIVE_RECHECK_HOURS (asked again)."""
        candidates = DirectoryUser.objects.filter(
            configuration=self.configuration, removed_at__isnull=True
        ).may_have_onedrive(now)
        if self.scope == self.Scope.ALL:
            return candidates
        chosen = models.Q(pk__in=self.users.values("pk"))
        if self.include_new_users:
            chosen |= models.Q(created_at__gt=self.created_at)
        return candidates.filter(chosen)


class ScheduleFiring(models.Model):
    """One firing of a schedule: the runs it started and the users it skipped."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="firings")
    fired_at = models.DateTimeField(auto_now_add=True, db_index=True)
    trigger = models.CharField(max_length=10, default="beat")  # beat, run_now
    # Started runs, and skipped ones (status "skipped": the user's previous run was still going).
    runs = models.ManyToManyField("backups.BackupRun", blank=True, related_name="firings")
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-fired_at", "-id"]

    def __str__(self):
        return f"{self.schedule} at {self.fired_at:%Y-%m-%d %H:%M}"

    @property
    def result(self) -> str:
        """ "running", "failed", "warning" (partial or skipped) or "succeeded" (or "empty")."""
        statuses = {run.status for run in self.runs.all()}
        if not statuses:
            return "empty"
        if statuses & set(jobs.ACTIVE_STATUSES):
            return "running"
        if statuses & {jobs.Status.FAILED, jobs.Status.CANCELED}:
            return "failed"
        if statuses & {jobs.Status.PARTIAL, jobs.Status.SKIPPED}:
            return "warning"
        return "succeeded"
