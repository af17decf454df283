"""When a restore ends: an audit entry (who, what, as of when, where to, counts, bytes) and an
email to the organization's administrators."""

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string

from backups.models import RestoreItem, RestoreJob
from organizations import audit
from organizations.mail import send_email

FAILURES_LISTED = 20
RESULT_WORDS: dict[str, str] = {
    RestoreJob.Status.SUCCEEDED: "succeeded",
    RestoreJob.Status.PARTIAL: "partially succeeded",
    RestoreJob.Status.FAILED: "failed",
    RestoreJob.Status.CANCELED: "was canceled",
}


def admin_emails(organization) -> list[str]:
    return sorted(m.user.email for m in organization.admins() if m.user.is_active and m.user.email)


def as_of_text(job: RestoreJob) -> str:
    return f"{job.as_of:%Y-%m-%d %H:%M} UTC" if job.as_of else "the latest backup"


def counts_text(job: RestoreJob) -> str:
    return (
        f"{job.files_restored} of {job.files_total} files restored "
        f"({filesizeformat(job.bytes_restored)}), {job.files_skipped} skipped, "
        f"{job.files_failed} failed; {filesizeformat(job.bytes_uploaded)} uploaded"
    )


def restore_ended(job: RestoreJob) -> None:
    """Audit and email the end of `job` (a row read again: its final counters)."""
    job = RestoreJob.objects.select_related(
        "organization", "source_user", "target_user", "requested_by"
    ).get(pk=job.pk)
    result = RESULT_WORDS.get(job.status, job.get_status_display().lower())
    source = f"{job.source_user} ({job.source_user.email})"
    message = (
        f"Restore of {job.what_text} of {source} as of {as_of_text(job)} to {job.where_text} "
        f"{result}: {counts_text(job)}."
    )
    audit.record(
        "restore_finished",
        message,
        actor=job.requested_by,
        actor_email=job.requested_by_email,
        organization=job.organization,
    )
    failures = list(
        job.items.filter(status=RestoreItem.Status.FAILED)
        .order_by("pk")
        .values_list("source_path", "message")[:FAILURES_LISTED]
    )
    body = render_to_string(
        "backups/restore_email.txt",
        {
            "job": job,
            "result": result,
            "source": source,
            "as_of": as_of_text(job),
            "failures": failures,
            "more_failures": max(0, job.files_failed - len(failures)),
            "link": settings.KODO_BASE_URL.rstrip("/") + job.link,
        },
    )
    send_email(f"Kodo: restore of {job.source_user} {result}", body, admin_emails(job.organization))
