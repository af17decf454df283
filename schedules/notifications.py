"""Emails to an organization's admins: after a schedule's firing, and a weekly summary (sent
for every firing and organization by schedules.actions)."""

import datetime as dt

from django.db.models import Count, Sum
from django.template.loader import render_to_string
from django.utils import timezone

from backups.models import BackupRun
from backups.overview import organization_alerts
from backups.verification import health_summary
from organizations.mail import send_email
from schedules.models import Schedule

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


def notify_firing(firing) -> bool:
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


def send_summary_report(organization, since, days) -> bool:
    runs = BackupRun.objects.for_organization(organization).filter(created_at__gte=since)
    counts = dict(runs.values_list("status").annotate(count=Count("id")))
    # Worded as the pages word them ("Partially succeeded: 2"), in the statuses' order.
    by_status = {status.label: counts[status] for status in BackupRun.Status if status in counts}
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
            "alerts": organization_alerts(organization),
        },
    )
    return send_email(f"Kodo: backup summary for {organization.name}", body, recipients)
