"""What the + ADD SCHEDULE wizard lets an admin search: directory users and time zones.

Users are searched on the server, a page at a time, so that a tenant of 50,000 users costs one
query of one page: no count (a count of a substring search reads every match), one row more
than the page to know whether there is a next one."""

import functools
import zoneinfo
from dataclasses import dataclass

from django.db.models import Q

from kodo.paging import UncountedPage
from o365.models import DirectoryUser

USERS_PAGE_SIZE = 25
USERS_MAX_PAGE = 2000  # 50,000 users; deeper pages are the last one (search instead)
TIME_ZONE_SUGGESTIONS = 5


@dataclass
class UserPage(UncountedPage):
    users: list
    number: int
    has_next: bool
    text: str


def page_number(text) -> int:
    try:
        number = int(str(text).strip())
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), USERS_MAX_PAGE)


def search_users(configuration, text: str = ""):
    """The configuration's users a schedule may back up whose name, email or user principal
    name contains `text`, whatever its case."""
    rows = DirectoryUser.objects.filter(configuration=configuration, removed_at__isnull=True)
    text = text.replace("\x00", "").strip()  # PostgreSQL refuses NUL in a query's text
    if text:
        rows = rows.filter(
            Q(display_name__icontains=text)
            | Q(mail__icontains=text)
            | Q(user_principal_name__icontains=text)
        )
    return rows.order_by("display_name", "user_principal_name", "pk")


def user_page(configuration, text: str = "", number=1) -> UserPage:
    number = page_number(number)
    start = (number - 1) * USERS_PAGE_SIZE
    rows = list(search_users(configuration, text)[start : start + USERS_PAGE_SIZE + 1])
    return UserPage(
        users=rows[:USERS_PAGE_SIZE],
        number=number,
        has_next=len(rows) > USERS_PAGE_SIZE and number < USERS_MAX_PAGE,
        text=text.replace("\x00", "").strip(),
    )


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


@functools.cache
def _canonical_names() -> dict[str, str]:
    return {name.lower(): name for name in time_zone_names()}


def canonical_time_zone(text: str) -> str | None:
    """The IANA name typed, in its own spelling ("europe/warsaw" -> "Europe/Warsaw"), or None."""
    return _canonical_names().get(str(text).strip().lower())


def time_zones_matching(text: str, limit: int = TIME_ZONE_SUGGESTIONS) -> list[str]:
    """Zones whose name contains `text` (spaces read as underscores), for "did you mean"."""
    needle = str(text).strip().lower().replace(" ", "_")
    if not needle:
        return []
    return [name for name in time_zone_names() if needle in name.lower()][:limit]
