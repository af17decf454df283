"""Emails to an organization's admins: after a schedule's firing, and a weekly summary."""

import datetime as dt
import logging

from django.db.models import Count, Sum
from django.template.loader import render_to_string
from django.utils import timezone

from backups.models import BackupRun
from backups.verification import health_summary
from organizations.mail import send_email
from organizations.models import Organization
from schedules.models import Schedule, ScheduleFiring

log = logging.getLogger(__name__)

WANTED = {
    Schedule.Notify.ALWAYS: {"failed", "warning", "succeeded"},
    Schedule.Notify.WARNING: {"failed", "warning"},
    Schedule.Notify.FAILURE: {"failed"},
    Schedule.Notify.NEVER: set(),
}
SUBJECTS = {"failed": "failed", "warning": "finished with warnings", "succeeded": "succeeded"}
GIVE_UP_AFTER = dt.timedelta(days=1)  # a firing's email that still fails is not retried after


def admin_emails(organization) -> list[str]:
    return sorted(m.user.email for m in organization.admins() if m.user.is_active and m.user.email)


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
            sent += _notify_firing(firing)
        except Exception:  # this firing's data or mail; the next firing is another's  # noqa: BLE001
            log.exception(
                "notifications: firing %s of schedule %s failed", firing.pk, firing.schedule_id
            )
    return sent


def _notify_firing(firing) -> bool:
    result = firing.result
    if result == "running":
        return False
    schedule = firing.schedule
    recipients = admin_emails(schedule.organization)
    sent = False
    if result in WANTED[schedule.notify] and recipients:
        body = render_to_string(
            "schedules/firing_email.txt",
            {
                "schedule": schedule,
                "firing": firing,
                "result": result,
                "runs": firing.runs.all(),
            },
        )
        sent = send_email(
            f"Kodo: backup schedule {schedule.name} {SUBJECTS[result]}", body, recipients
        )
        if not sent and timezone.now() - firing.fired_at < GIVE_UP_AFTER:
            return False  # logged by send_email; tried again on the next round
    firing.notified_at = timezone.now()
    firing.save(update_fields=["notified_at"])
    return sent


def do_send_summary_reports(days: int = 7) -> int:
    """A summary of the last `days` days to the admins of each organization that has backups;
    one organization's failure is logged and does not stop the others'."""
    since = timezone.now() - dt.timedelta(days=days)
    sent = 0
    for organization in Organization.objects.filter(schedules__isnull=False).distinct():
        try:
            sent += _send_summary_report(organization, since, days)
        except Exception:  # noqa: BLE001
            log.exception(
                "notifications: summary report of organization %s failed", organization.pk
            )
    return sent


def _send_summary_report(organization, since, days) -> bool:
    runs = BackupRun.objects.for_organization(organization).filter(created_at__gte=since)
    by_status = dict(runs.values_list("status").annotate(count=Count("id")))
    recipients = admin_emails(organization)
    if not recipients:
        return False
    body = render_to_string(
        "schedules/summary_email.txt",
        {
            "organization": organization,
            "days": days,
            "by_status": by_status,
            "total": sum(by_status.values()),
            "stored": runs.aggregate(total=Sum("bytes_stored"))["total"] or 0,
            "failures": runs.filter(status=BackupRun.Status.FAILED).select_related(
                "directory_user"
            )[:50],
            "verification": health_summary(organization, since),
        },
    )
    return send_email(f"Kodo: backup summary for {organization.name}", body, recipients)
