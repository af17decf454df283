"""Emails to an organization's admins: after a schedule's firing, and a weekly summary."""

import datetime as dt
import logging

from django.core.mail import send_mail
from django.db.models import Count, Sum
from django.template.loader import render_to_string
from django.utils import timezone

from backups.models import BackupRun
from organizations.models import Organization
from schedules.actions import firing_result
from schedules.models import Schedule, ScheduleFiring

log = logging.getLogger(__name__)

WANTED = {
    Schedule.Notify.ALWAYS: {"failed", "warning", "succeeded"},
    Schedule.Notify.WARNING: {"failed", "warning"},
    Schedule.Notify.FAILURE: {"failed"},
    Schedule.Notify.NEVER: set(),
}
SUBJECTS = {"failed": "failed", "warning": "finished with warnings", "succeeded": "succeeded"}


def admin_emails(organization) -> list[str]:
    return sorted(m.user.email for m in organization.admins()
                  if m.user.is_active and m.user.email)


def do_notify_finished_firings() -> int:
    """Email about every firing whose runs have all finished, once, as its schedule asks."""
    sent = 0
    pending = (ScheduleFiring.objects.filter(notified_at__isnull=True)
               .select_related("schedule__organization")
               .prefetch_related("runs__directory_user"))
    for firing in pending:
        result = firing_result(firing)
        if result == "running":
            continue
        schedule = firing.schedule
        recipients = admin_emails(schedule.organization)
        if result in WANTED[schedule.notify] and recipients:
            body = render_to_string("schedules/firing_email.txt", {
                "schedule": schedule, "firing": firing, "result": result,
                "runs": firing.runs.all(),
            })
            send_mail(f"Kodo: backup schedule {schedule.name} {SUBJECTS[result]}", body, None,
                      recipients)
            sent += 1
        firing.notified_at = timezone.now()
        firing.save(update_fields=["notified_at"])
    return sent


def do_send_summary_reports(days: int = 7) -> int:
    """A summary of the last `days` days to the admins of each organization that has backups."""
    since = timezone.now() - dt.timedelta(days=days)
    sent = 0
    for organization in Organization.objects.filter(schedules__isnull=False).distinct():
        runs = BackupRun.objects.for_organization(organization).filter(created_at__gte=since)
        by_status = dict(runs.values_list("status").annotate(count=Count("id")))
        recipients = admin_emails(organization)
        if not recipients:
            continue
        body = render_to_string("schedules/summary_email.txt", {
            "organization": organization, "days": days, "by_status": by_status,
            "total": sum(by_status.values()),
            "stored": runs.aggregate(total=Sum("bytes_stored"))["total"] or 0,
            "failures": runs.filter(status=BackupRun.Status.FAILED)
                            .select_related("directory_user")[:50],
        })
        send_mail(f"Kodo: backup summary for {organization.name}", body, None, recipients)
        sent += 1
    return sent
