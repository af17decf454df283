"""The server administrator's pages about backups across organizations: the overview and the
monthly usage report (CSV, for billing)."""

from dataclasses import dataclass

from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone

from backups import overview
from organizations.access import server_admin_required

# The overview's columns: (?sort= key, heading, first click sorts descending).
COLUMNS = [
    ("organization", "Organization", False),
    ("protected", "Protected users", True),
    ("backups", "Backups, last 24 hours", True),
    ("failures", "Failures, last 24 hours", True),
    ("stored", "Data stored", True),
    ("connection", "Failing connections", True),
    ("expiring", "Certificates expiring", True),
    ("stale", "Not backed up for 48 hours", True),
]
ARIA_SORT = {False: "ascending", True: "descending"}


@dataclass
class Heading:
    label: str
    url: str  # sorts by this column (the other way round when it is the current one)
    aria_sort: str  # "ascending" / "descending" on the current column, else ""


def _headings(column: str, descending: bool) -> list[Heading]:
    headings = []
    for key, label, descending_first in COLUMNS:
        current = key == column
        next_descending = not descending if current else descending_first
        headings.append(
            Heading(
                label=label,
                url=f"?sort={'-' if next_descending else ''}{key}",
                aria_sort=ARIA_SORT[descending] if current else "",
            )
        )
    return headings


@server_admin_required
def server_overview(request):
    """Every organization's protection, last day, storage and alerts, on one page."""
    column, descending = overview.parse_sort(request.GET.get("sort"))
    now = timezone.now()
    return render(
        request,
        "backups/server_overview.html",
        {
            "rows": overview.overview(sort=column, descending=descending, now=now),
            "headings": _headings(column, descending),
            "this_month": overview.parse_month(None, now).strftime("%Y-%m"),
            "now": now,
        },
    )


@server_admin_required
def server_usage(request):
    """?month=YYYY-MM: each organization's usage in that month, as CSV."""
    try:
        month = overview.parse_month(request.GET.get("month"))
    except ValueError:
        return HttpResponseBadRequest(
            "The month must be written YYYY-MM, e.g. 2026-11.", content_type="text/plain"
        )
    response = HttpResponse(overview.usage_csv(month), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="kodo-usage-{month:%Y-%m}.csv"'
    return response
