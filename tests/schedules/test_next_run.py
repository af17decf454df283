"""Times stay right across daylight-saving changes, in Kodo's display and in Celery beat."""

import datetime as dt
import zoneinfo

import pytest
from django_celery_beat.tzcrontab import TzAwareCrontab

from tests.factories import make_schedule

WARSAW = zoneinfo.ZoneInfo("Europe/Warsaw")
UTC = dt.UTC


def at(year, month, day, hour, minute=0, tz=UTC):
    return dt.datetime(year, month, day, hour, minute, tzinfo=tz)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Spring forward in Europe: 2027-03-28 02:00 -> 03:00. 09:00 local is 08:00 UTC before,
        (at(2027, 3, 27, 12), at(2027, 3, 28, 7)),  # and 07:00 UTC after the change.
        (at(2027, 3, 26, 12), at(2027, 3, 27, 8)),
        # Fall back: 2027-10-31 03:00 -> 02:00.
        (at(2027, 10, 30, 12), at(2027, 10, 31, 8)),
        (at(2027, 10, 29, 12), at(2027, 10, 30, 7)),
    ],
)
def test_daily_runs_keep_their_local_time(world, now, expected):
    schedule = make_schedule(world.org_a, time=dt.time(9, 0), time_zone="Europe/Warsaw")
    assert schedule.next_run_after(now) == expected
    assert expected.astimezone(WARSAW).hour == 9


@pytest.mark.parametrize("now", [at(2027, 3, 27, 12), at(2027, 10, 30, 12)])
def test_celery_beat_agrees_across_the_change(world, now):
    schedule = make_schedule(world.org_a, time=dt.time(9, 0), time_zone="Europe/Warsaw")
    beat = schedule.periodic_task.crontab.schedule  # what beat evaluates
    assert isinstance(beat, TzAwareCrontab) and str(beat.tz) == "Europe/Warsaw"
    beat.nowfun = lambda: now.astimezone(WARSAW)  # a frozen clock
    last_run = now.astimezone(WARSAW) - dt.timedelta(minutes=1)
    due, seconds = beat.is_due(last_run)
    assert not due
    assert abs((now + dt.timedelta(seconds=seconds)) - schedule.next_run_after(now)) < dt.timedelta(
        seconds=2
    )


def test_weekly_runs_only_on_chosen_days(world):
    schedule = make_schedule(
        world.org_a,
        frequency="weekly",
        weekdays=[2, 5],  # Wed, Sat
        time=dt.time(1, 30),
        time_zone="UTC",
    )
    first = schedule.next_run_after(at(2026, 11, 30, 12))  # a Monday
    assert (first.weekday(), first.hour, first.minute) == (2, 1, 30)
    second = schedule.next_run_after(first)
    assert second.weekday() == 5


def test_every_n_hours_counts_real_hours_across_the_change(world):
    schedule = make_schedule(
        world.org_a,
        frequency="hourly",
        every_hours=6,
        time=dt.time(0, 0),
        time_zone="Europe/Warsaw",
        start_date=dt.date(2027, 3, 27),
    )
    before = schedule.next_run_after(at(2027, 3, 27, 22))
    after = schedule.next_run_after(before)
    assert after - before == dt.timedelta(hours=6)


def test_start_date_and_disabled(world):
    schedule = make_schedule(world.org_a, start_date=dt.date(2030, 1, 1))
    assert schedule.next_run_after(at(2026, 11, 27, 0)) == at(2030, 1, 1, 22)
    schedule.enabled = False
    assert schedule.next_run_after(at(2026, 11, 27, 0)) is None
