"""Schedules: save them (and their beat entries), fire them, tell the admins what happened."""

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from backups.actions import start_run
from backups.models import BackupRun
from organizations import audit
from organizations.models import Organization
from schedules.beat import remove_beat_entry, sync_beat_entry
from schedules.models import Schedule, ScheduleFiring
from schedules.notifications import notify_firing, send_summary_report

log = logging.getLogger(__name__)

SCHEDULE_FIELDS = [
    "name",
    "configuration",
    "scope",
    "include_new_users",
    "frequency",
    "time",
    "weekdays",
    "every_hours",
    "start_date",
    "time_zone",
    "keep_versions",
    "keep_deleted_for",
    "keep_deleted_unit",
    "notify",
]


@transaction.atomic
def do_save_schedule(*, request, organization, data, schedule=None) -> Schedule:
    created = schedule is None
    if created:
        schedule = Schedule(organization=organization)
    for field in SCHEDULE_FIELDS:
        setattr(schedule, field, data[field])
    schedule.save()
    schedule.users.set(data["users"] if schedule.scope == Schedule.Scope.CHOSEN else [])
    sync_beat_entry(schedule)
    audit.record(
        "schedule_created" if created else "schedule_updated",
        f"{'Created' if created else 'Edited'} schedule {schedule.name}: "
        f"{schedule.describe_when()}, {schedule.describe_what().lower()}.",
        request=request,
        organization=organization,
    )
    return schedule


@transaction.atomic
def do_set_schedule_enabled(*, request, schedule, enabled: bool):
    schedule.enabled = enabled
    schedule.save(update_fields=["enabled", "updated_at"])
    sync_beat_entry(schedule)
    state = "Enabled" if enabled else "Disabled"
    audit.record(
        f"schedule_{state.lower()}",
        f"{state} schedule {schedule.name}.",
        request=request,
        organization=schedule.organization,
    )


@transaction.atomic
def do_delete_schedule(*, request, schedule):
    name = schedule.name
    remove_beat_entry(schedule)
    schedule.delete()
    audit.record(
        "schedule_deleted",
        f"Deleted schedule {name}; its backups are kept.",
        request=request,
        organization=schedule.organization,
    )


@transaction.atomic
def do_fire_schedule(schedule, *, trigger="beat", request=None) -> ScheduleFiring:
    """Start a run for each of the schedule's users. A user whose previous run is still going
    gets a run recorded as skipped, never a second one."""
    firing = ScheduleFiring.objects.create(schedule=schedule, trigger=trigger)
    now = timezone.now()
    runs = []
    for user in schedule.users_for_firing().select_related("configuration"):
        run, started = start_run(user, BackupRun.Trigger.SCHEDULE)
        if not started:
            run = BackupRun.objects.create(
                organization_id=schedule.organization_id,
                configuration_id=user.configuration_id,
                directory_user=user,
                trigger=BackupRun.Trigger.SCHEDULE,
                status=BackupRun.Status.SKIPPED,
                started_at=now,
                finished_at=now,
                error="Skipped: the previous backup of this user was still running.",
            )
        runs.append(run)
    firing.runs.set(runs)
    if request is not None:
        audit.record(
            "schedule_run_now",
            f"Ran schedule {schedule.name} now ({len(runs)} users).",
            request=request,
            organization=schedule.organization,
        )
    return firing


def do_notify_finished_firings() -> int:
    """Email about every firing whose runs have all finished, once, as its schedule asks.

    Each firing is sent and recorded on its own: one that fails is logged and tried again on the
    next round (for a day), and never stops the others."""
    sent = 0
    pending = (
        ScheduleFiring.objects.filter(notified_at__isnull=True)
        .select_related("schedule__organization")
        .prefetch_related("runs__directory_user")
    )
    for firing in pending:
        try:
            sent += notify_firing(firing)
        except Exception:  # this firing's data or mail; the next firing is another's  # noqa: BLE001
            log.exception(
                "notifications: firing %s of schedule %s failed", firing.pk, firing.schedule_id
            )
    return sent


def do_send_summary_reports(days: int = 7) -> int:
    """A summary of the last `days` days to the admins of each organization that has backups;
    one organization's failure is logged and does not stop the others'."""
    since = timezone.now() - dt.timedelta(days=days)
    sent = 0
    for organization in Organization.objects.filter(schedules__isnull=False).distinct():
        try:
            sent += send_summary_report(organization, since, days)
        except Exception:  # noqa: BLE001
            log.exception(
                "notifications: summary report of organization %s failed", organization.pk
            )
    return sent
