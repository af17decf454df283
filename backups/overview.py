"""The service provider's view across organizations: the server administrator's overview, the
monthly usage report for billing, and the alerts an organization's admins also see (Dashboard,
weekly summary email).

Every function here costs a fixed number of queries whatever the number of organizations,
configurations, users and runs: each organization's numbers are subqueries of one query over
the organizations, each an index range (see the indexes named below, and bench/bench_pages.py).

Words:
- A user is *protected* once it has a completed backup (succeeded or partially succeeded), also
  after it left Microsoft 365 (its backups are kept): `protected_users`, used by the Dashboard
  too (`DirectoryUser.backed_up`, kept by triggers on BackupRun; index `users_protected`).
- The engine records a user's last completed backup on its drive: `DriveState.last_run`, set
  (with `updated_at`) only when a run completes, so its `updated_at` is when that backup finished
  (indexes `drives_backed_up`, `drives_late`, `drives_of_user`).
- A user is *not backed up for 48 hours* when it is protected, still in Microsoft 365, and its
  last completed backup finished more than 48 hours ago. A user never backed up is unprotected,
  not late.
- *Data stored* is the Dashboard's: what the backups wrote to the store after deduplication and
  compression, the sum of the runs' `bytes_stored` (kept per quarter hour by triggers:
  `StoredBytes`).
"""

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from backups.models import BackupRun, DriveState, StoredBytes, UsageSample
from kodo import jobs
from o365.models import Configuration, DirectoryJob, DirectoryUser
from o365.validators import EXPIRY_WARNING_DAYS
from organizations.models import Organization

LAST_DAY = dt.timedelta(hours=24)
STALE_AFTER = dt.timedelta(hours=48)
EXPIRY_NOTICE = dt.timedelta(days=EXPIRY_WARNING_DAYS)
STALE_SHOWN = 10
# The results a finished backup can have, in the order the pages show them.
RESULTS = (
    jobs.Status.SUCCEEDED,
    jobs.Status.PARTIAL,
    jobs.Status.FAILED,
    jobs.Status.SKIPPED,
    jobs.Status.CANCELED,
)
# Secrets stay in the database: these pages never need them.
DONE_STATUSES = (jobs.Status.SUCCEEDED, jobs.Status.PARTIAL)  # a completed backup
SECRET_FIELDS = (
    "client_secret_encrypted",
    "certificate_password_encrypted",
    "certificate_pfx_encrypted",
)


def _per_organization(queryset, aggregate, organization="organization"):
    """`aggregate` of `queryset`'s rows of the outer organization (0 when none), a subquery."""
    rows = queryset.filter(**{organization: OuterRef("pk")}).order_by()
    return Coalesce(
        Subquery(rows.values(organization).annotate(value=aggregate).values("value")), 0
    )


def protected_users(directory_users):
    """The *protected* users among `directory_users` (a DirectoryUser queryset): those with a
    completed backup, succeeded or partial, also after they left Microsoft 365 (their backups are
    kept, and billed). The one definition of the overview, the usage report and the Dashboard,
    read from `DirectoryUser.backed_up` (kept by triggers on BackupRun, migration
    0011_run_tallies; index `users_protected`)."""
    return directory_users.filter(has_completed_backup())


def has_completed_backup() -> Q:
    """Whether a DirectoryUser is protected (`protected_users`), as a condition."""
    return Q(backed_up=True)


def _backed_up_drives():
    """The drives of protected users (their last completed backup is `updated_at`)."""
    return DriveState.objects.filter(last_run__isnull=False)


def _late_drives(now):
    """Backed-up drives of users still in Microsoft 365 whose last completed backup (on any of
    their drives) finished more than STALE_AFTER ago."""
    cutoff = now - STALE_AFTER
    fresher = _backed_up_drives().filter(
        directory_user=OuterRef("directory_user"), updated_at__gte=cutoff
    )
    return (
        _backed_up_drives()
        .filter(updated_at__lt=cutoff, directory_user__removed_at__isnull=True)
        .exclude(Exists(fresher))
    )


def _usage_numbers() -> dict:
    """Annotations of an organization: bytes_stored (the few StoredBytes rows of each day)."""
    return {"bytes_stored": _per_organization(StoredBytes.objects.all(), Sum("bytes_stored"))}


def _protected_users() -> dict[int, int]:
    """{organization id: its protected users}: one query over every protected user, grouped
    (index `users_protected` alone). A subquery per organization would read the users table
    once per organization on PostgreSQL."""
    rows = (
        protected_users(DirectoryUser.objects.all())
        .order_by()
        .values("configuration__organization")
        .annotate(users=Count("*"))
    )
    return {row["configuration__organization"]: row["users"] for row in rows}


def _stale_users(now) -> dict[int, int]:
    """{organization id: its users not backed up for STALE_AFTER}: one query reading the late
    drives alone (index `drives_late`, by `updated_at` first), counted here; grouped in SQL,
    SQLite would rather scan every drive in the organizations' order."""
    late_users = set(_late_drives(now).order_by().values_list("organization", "directory_user"))
    stale: dict[int, int] = {}
    for organization_id, _ in late_users:
        stale[organization_id] = stale.get(organization_id, 0) + 1
    return stale


# ----- alerts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigurationAlert:
    """Something about a configuration that stops or will stop its backups."""

    CONNECTION = "connection"
    EXPIRY = "expiry"

    configuration: Configuration
    kind: str
    at: dt.datetime  # when it failed, or when the certificate expires
    text: str  # what happened, in words
    expired: bool = False  # a certificate past its date


def _failure_text(configuration) -> tuple[dt.datetime, str] | None:
    """The configuration's newest connection event, if it failed: the last TEST CONNECTION or
    the last IMPORT USERS / SYNCHRONIZE USERS, whichever finished last."""
    events = []
    if configuration.last_test_at is not None:
        events.append((configuration.last_test_at, configuration.last_test_ok is False, "test"))
    if configuration.last_job_finished_at is not None:
        failed = configuration.last_job_status == jobs.Status.FAILED
        events.append((configuration.last_job_finished_at, failed, "job"))
    if not events:
        return None
    at, failed, source = max(events, key=lambda event: event[0])
    if not failed:
        return None
    if source == "test":
        return at, "TEST CONNECTION failed"
    kind = DirectoryJob.Kind(configuration.last_job_kind).label.upper()
    return at, f"{kind} failed"


def configuration_alerts(configurations, now=None) -> list[ConfigurationAlert]:
    """The alerts of `configurations` (a queryset): a failing connection (newest first), then
    certificates expired or expiring within EXPIRY_NOTICE (soonest first). One query.

    A client secret's expiry date is not known to Kodo (Microsoft gives it only to apps allowed to
    read application registrations): only certificates are checked."""
    now = now or timezone.now()
    last_job = DirectoryJob.objects.filter(
        configuration=OuterRef("pk"), finished_at__isnull=False
    ).order_by("-finished_at", "-id")
    rows = (
        configurations.defer(*SECRET_FIELDS)
        .annotate(
            last_job_finished_at=Subquery(last_job.values("finished_at")[:1]),
            last_job_status=Subquery(last_job.values("status")[:1]),
            last_job_kind=Subquery(last_job.values("kind")[:1]),
        )
        .filter(
            Q(last_test_ok=False)
            | Q(last_job_status=jobs.Status.FAILED)
            | Q(certificate_not_after__lte=now + EXPIRY_NOTICE)
        )
        .select_related("organization")
        .order_by("organization__name", "name")
    )
    failing, expiring = [], []
    for configuration in rows:
        failure = _failure_text(configuration)
        if failure is not None:
            at, text = failure
            failing.append(
                ConfigurationAlert(configuration, ConfigurationAlert.CONNECTION, at, text)
            )
        not_after = configuration.certificate_not_after
        if not_after is not None and not_after <= now + EXPIRY_NOTICE:
            expired = not_after <= now
            expiring.append(
                ConfigurationAlert(
                    configuration,
                    ConfigurationAlert.EXPIRY,
                    not_after,
                    f"Certificate {'expired' if expired else 'expires'}",
                    expired,
                )
            )
    failing.sort(key=lambda alert: alert.at, reverse=True)
    expiring.sort(key=lambda alert: alert.at)
    return failing + expiring


@dataclass
class LateUser:
    directory_user: object
    last_good: dt.datetime  # when its last completed backup finished


@dataclass
class Alerts:
    """One organization's alerts: its configurations', and its users not backed up lately."""

    configurations: list[ConfigurationAlert] = field(default_factory=list)
    stale_users: int = 0
    stale_shown: list[LateUser] = field(default_factory=list)  # the longest late first

    @property
    def failing(self) -> list[ConfigurationAlert]:
        return [a for a in self.configurations if a.kind == ConfigurationAlert.CONNECTION]

    @property
    def expiring(self) -> list[ConfigurationAlert]:
        return [a for a in self.configurations if a.kind == ConfigurationAlert.EXPIRY]

    @property
    def stale_not_shown(self) -> int:
        return self.stale_users - len(self.stale_shown)

    def __bool__(self) -> bool:
        return bool(self.configurations or self.stale_users)


def organization_alerts(organization, now=None) -> Alerts:
    """Two queries, three when users are late."""
    now = now or timezone.now()
    alerts = Alerts(configuration_alerts(Configuration.objects.for_organization(organization), now))
    late = _late_drives(now).filter(organization=organization)
    alerts.stale_users = late.aggregate(users=Count("directory_user", distinct=True))["users"]
    if alerts.stale_users:
        shown: dict[int, LateUser] = {}
        drives = late.select_related("directory_user__configuration").order_by("updated_at", "pk")
        for drive in drives[: 2 * STALE_SHOWN]:  # a user with two drives is listed once
            if drive.directory_user_id not in shown:
                shown[drive.directory_user_id] = LateUser(drive.directory_user, drive.updated_at)
        alerts.stale_shown = list(shown.values())[:STALE_SHOWN]
    return alerts


# ----- what each organization has now -----------------------------------------------------


@dataclass
class Usage:
    protected_users: int = 0
    stale_users: int = 0
    bytes_stored: int = 0


def current_usage(now=None) -> dict[int, Usage]:
    """{organization id: Usage} of every organization. Three queries."""
    now = now or timezone.now()
    stale, protected = _stale_users(now), _protected_users()
    return {
        organization.pk: _usage_of(organization, stale, protected)
        for organization in Organization.objects.annotate(**_usage_numbers()).only("pk")
    }


def _usage_of(organization, stale: dict[int, int], protected: dict[int, int]) -> Usage:
    """The Usage of an organization annotated with _usage_numbers."""
    return Usage(
        protected.get(organization.pk, 0),
        stale.get(organization.pk, 0),
        vars(organization)["bytes_stored"],
    )


# ----- the overview ------------------------------------------------------------------------


@dataclass
class OrganizationRow:
    """One organization on the overview."""

    organization: Organization
    usage: Usage
    results: dict  # {status: backups that finished with it in the last 24 hours}
    failures: int  # jobs of every kind that failed in the last 24 hours
    alerts: list[ConfigurationAlert]

    @property
    def backups_last_day(self) -> int:
        return sum(self.results.values())

    @property
    def result_badges(self) -> list:
        """(status, label, badge, count) in RESULTS order."""
        return [
            (status.value, status.label, jobs.BADGES[status], self.results.get(status, 0))
            for status in RESULTS
        ]

    @property
    def failing(self) -> list[ConfigurationAlert]:
        return [a for a in self.alerts if a.kind == ConfigurationAlert.CONNECTION]

    @property
    def expiring(self) -> list[ConfigurationAlert]:
        return [a for a in self.alerts if a.kind == ConfigurationAlert.EXPIRY]


# ?sort= value -> the row's key (the column it sorts); "-" in front sorts descending.
SORTS = {
    "organization": lambda row: row.organization.name.lower(),
    "protected": lambda row: row.usage.protected_users,
    "backups": lambda row: row.backups_last_day,
    "failures": lambda row: row.failures,
    "stored": lambda row: row.usage.bytes_stored,
    "connection": lambda row: len(row.failing),
    "expiring": lambda row: len(row.expiring),
    "stale": lambda row: row.usage.stale_users,
}
DEFAULT_SORT = "organization"


def parse_sort(value: str | None) -> tuple[str, bool]:
    """(column, descending) of a ?sort= value; anything unknown is the default."""
    value = (value or "").strip()
    descending = value.startswith("-")
    column = value.lstrip("-")
    if column not in SORTS:
        return DEFAULT_SORT, False
    return column, descending


def _last_day_numbers(since) -> dict:
    """Annotations of an organization: `result_<status>`, its backups that finished since
    `since` with each result (index `runs_by_result`); `failed_<kind>`, its other jobs that
    failed since then (one per registered kind: directory jobs, restores, verifications)."""
    numbers = {
        f"result_{status}": _per_organization(
            BackupRun.objects.filter(status=status, finished_at__gte=since), Count("*")
        )
        for status in RESULTS
    }
    for model in jobs.KINDS:
        if model is BackupRun:
            continue  # its failures are result_failed
        fields = {f.name for f in model._meta.get_fields()}
        organization = "organization" if "organization" in fields else "configuration__organization"
        failed = model.objects.filter(
            status__in=model.statuses_for([jobs.Status.FAILED]), finished_at__gte=since
        )
        numbers[f"failed_{model._meta.model_name}"] = _per_organization(
            failed, Count("*"), organization
        )
    return numbers


def overview(*, sort: str = DEFAULT_SORT, descending: bool = False, now=None) -> list:
    """Every organization's row, sorted by the column `sort` (then by name). Four queries:
    the organizations with their numbers, their protected users, their users not backed up
    lately, the configurations with alerts."""
    now = now or timezone.now()
    stale, protected = _stale_users(now), _protected_users()
    alerts: dict[int, list] = {}
    for alert in configuration_alerts(Configuration.objects.all(), now):
        alerts.setdefault(alert.configuration.organization_id, []).append(alert)
    organizations = Organization.objects.annotate(
        **_usage_numbers(), **_last_day_numbers(now - LAST_DAY)
    ).order_by("name")
    rows = []
    for organization in organizations:
        numbers = vars(organization)
        results = {status: numbers[f"result_{status}"] for status in RESULTS}
        failed_other = sum(v for k, v in numbers.items() if k.startswith("failed_"))
        rows.append(
            OrganizationRow(
                organization=organization,
                usage=_usage_of(organization, stale, protected),
                results={status: count for status, count in results.items() if count},
                failures=results[jobs.Status.FAILED] + failed_other,
                alerts=alerts.get(organization.pk, []),
            )
        )
    rows.sort(key=SORTS.get(sort, SORTS[DEFAULT_SORT]), reverse=descending)
    return rows


# ----- usage for billing -------------------------------------------------------------------


def record_usage_samples(now=None) -> int:
    """Record today's (UTC) UsageSample of every organization; run again the same day, the
    newer numbers replace the day's. Five queries."""
    now = now or timezone.now()
    day = now.astimezone(dt.UTC).date()
    usage = current_usage(now)
    samples = [
        UsageSample(
            organization_id=organization_id,
            day=day,
            protected_users=usage.get(organization_id, Usage()).protected_users,
            stored_bytes=usage.get(organization_id, Usage()).bytes_stored,
        )
        for organization_id in Organization.objects.values_list("pk", flat=True)
    ]
    UsageSample.objects.bulk_create(
        samples,
        update_conflicts=True,
        unique_fields=["organization", "day"],
        update_fields=["protected_users", "stored_bytes", "recorded_at"],
    )
    return len(samples)


def parse_month(value: str | None, now=None) -> dt.date:
    """The first day of the month `YYYY-MM` (default: this month, UTC); ValueError otherwise."""
    if not value:
        return (now or timezone.now()).astimezone(dt.UTC).date().replace(day=1)
    parsed = dt.datetime.strptime(value.strip()[:7], "%Y-%m").date()
    if not 2000 <= parsed.year <= 2999 or len(value.strip()) != 7:
        raise ValueError(f"not a month: {value!r}")
    return parsed


def _next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


@dataclass
class MonthlyUsage:
    organization: Organization
    protected_users: int | None = None  # on the last day sampled
    peak_protected_users: int | None = None
    stored_bytes: int | None = None  # on the last day sampled
    peak_stored_bytes: int | None = None
    days_sampled: int = 0
    last_day: dt.date | None = None


def monthly_usage(month: dt.date, now=None) -> list[MonthlyUsage]:
    """Each organization's usage in `month` (UTC days), from its daily UsageSamples; for the
    current month, today's live numbers stand in for today's sample. An organization created
    after the month has no row; one without samples has empty numbers. Two queries, five for
    the current month."""
    now = now or timezone.now()
    today = now.astimezone(dt.UTC).date()
    end = _next_month(month)
    samples: dict[int, dict[dt.date, tuple[int, int]]] = {}
    rows = UsageSample.objects.filter(day__gte=month, day__lt=end).values_list(
        "organization_id", "day", "protected_users", "stored_bytes"
    )
    for organization_id, day, protected, stored in rows:
        samples.setdefault(organization_id, {})[day] = (protected, stored)
    created_before = dt.datetime.combine(end, dt.time(), dt.UTC)
    organizations = list(
        Organization.objects.filter(created_at__lt=created_before).order_by("name")
    )
    if month <= today < end:
        live = current_usage(now)
        for organization in organizations:
            current = live.get(organization.pk, Usage())
            samples.setdefault(organization.pk, {})[today] = (
                current.protected_users,
                current.bytes_stored,
            )
    report = []
    for organization in organizations:
        days = samples.get(organization.pk, {})
        usage = MonthlyUsage(organization, days_sampled=len(days))
        if days:
            usage.last_day = max(days)
            usage.protected_users, usage.stored_bytes = days[usage.last_day]
            usage.peak_protected_users = max(protected for protected, _ in days.values())
            usage.peak_stored_bytes = max(stored for _, stored in days.values())
        report.append(usage)
    return report


CSV_HEADER = [
    "organization",
    "organization_code",
    "month",
    "protected_users",
    "peak_protected_users",
    "stored_bytes",
    "peak_stored_bytes",
    "days_sampled",
    "last_day_sampled",
]
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def usage_csv(month: dt.date, now=None) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for usage in monthly_usage(month, now):
        writer.writerow(
            [
                csv_cell(value)
                for value in (
                    usage.organization.name,
                    usage.organization.code,
                    month.strftime("%Y-%m"),
                    usage.protected_users,
                    usage.peak_protected_users,
                    usage.stored_bytes,
                    usage.peak_stored_bytes,
                    usage.days_sampled,
                    usage.last_day,
                )
            ]
        )
    return out.getvalue()
