"""The wizard's next runs: computed by Schedule.next_runs (the list's and beat's computation), in
the schedule's own time zone, as a fragment the When step refreshes; the list shows the next run
in the schedule's zone too."""

import datetime as dt
import re
import zoneinfo

import pytest

from schedules.models import Schedule
from tests.factories import make_configuration, make_schedule, wizard_values


def _preview(client, world, **params):
    values = {
        "frequency": "weekly",
        "time": "22:00",
        "weekdays": ["1"],  # Tuesday
        "every_hours": "6",
        "start_date": "2027-03-01",
        "time_zone": "Europe/Warsaw",
    }
    values.update(params)
    return client.get(f"/o/{world.org_a.code}/schedules/preview/", values)


def _runs(response) -> list[str]:
    return re.findall(r"<li>(\w{3} \d{4}-\d\d-\d\d \d\d:\d\d) <span", response.content.decode())


def test_it_lists_the_next_five_runs_in_the_schedules_zone(admin_a_client, world):
    response = _preview(admin_a_client, world)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Next runs (Europe/Warsaw)" in page
    runs = _runs(response)
    # Tuesdays at 22:00 local, across the change to summer time (2027-03-28): CET, then CEST.
    assert runs == [
        "Tue 2027-03-02 22:00",
        "Tue 2027-03-09 22:00",
        "Tue 2027-03-16 22:00",
        "Tue 2027-03-23 22:00",
        "Tue 2027-03-30 22:00",
    ]
    assert "CET" in page and "CEST" in page
    # Another zone: the same wall-clock times, in that zone.
    tokyo = _preview(admin_a_client, world, time_zone="asia/TOKYO")
    assert "Next runs (Asia/Tokyo)" in tokyo.content.decode()
    assert _runs(tokyo)[0] == "Tue 2027-03-02 22:00"
    hourly = _runs(_preview(admin_a_client, world, frequency="hourly", every_hours="8"))
    assert hourly[:4] == [
        "Mon 2027-03-01 22:00",
        "Tue 2027-03-02 06:00",
        "Tue 2027-03-02 14:00",
        "Tue 2027-03-02 22:00",
    ]


def test_it_agrees_with_the_saved_schedule(admin_a_client, world):
    schedule = make_schedule(
        world.org_a,
        frequency="weekly",
        weekdays=[1],
        time=dt.time(22, 0),
        time_zone="Europe/Warsaw",
        start_date=dt.date(2027, 3, 1),
    )
    expected = [
        f"{run:%a %Y-%m-%d %H:%M}" for run in schedule.next_runs(5, after=dt.datetime.now(dt.UTC))
    ]
    assert _runs(_preview(admin_a_client, world)) == expected
    assert all(run.tzinfo == zoneinfo.ZoneInfo("Europe/Warsaw") for run in schedule.next_runs(5))


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"time_zone": "Moon/Base"}, "Check Time zone"),
        ({"weekdays": []}, "Check On days"),
        ({"time": "25:00", "every_hours": "x"}, "Check At, Every N hours"),
        ({"frequency": "\x00", "start_date": "9" * 300}, "Check"),
    ],
)
def test_unfinished_times_say_what_to_check(admin_a_client, world, params, says):
    response = _preview(admin_a_client, world, **params)
    assert response.status_code == 200
    assert says in response.content.decode() and not _runs(response)


def test_the_when_step_shows_the_next_runs_and_the_zones(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    page = admin_a_client.post(
        f"/o/{world.org_a.code}/schedules/new/",
        wizard_values(configuration, time="22:00", start_date="2027-03-01", step=1, action="next"),
    ).content.decode()
    assert "Step 2: When" in page and "Next runs (Europe/Warsaw)" in page
    assert '<option value="America/Argentina/Buenos_Aires">' in page
    assert 'list="time-zones"' in page and "/schedules/preview/" in page


def test_a_part_of_a_zones_name_offers_the_zones_that_hold_it(admin_a_client, world):
    page = _preview(admin_a_client, world, time_zone="new york").content.decode()
    assert 'data-time-zone="America/New_York"' in page and "Check Time zone" in page
    page = _preview(admin_a_client, world, time_zone="america").content.decode()
    assert page.count("data-time-zone=") == 8  # a few, not every zone of the Americas
    page = _preview(admin_a_client, world, time_zone="<b>x</b>").content.decode()
    assert "data-time-zone" not in page and "<b>x" not in page


def test_a_typed_zone_is_saved_in_its_own_spelling(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    values = wizard_values(
        configuration, time="22:00", start_date="2027-03-01", step=4, action="save"
    )
    url = f"/o/{world.org_a.code}/schedules/new/"
    page = admin_a_client.post(url, {**values, "time_zone": "warsaw"}).content.decode()
    assert "is not a time zone. Did you mean Europe/Warsaw?" in page
    assert admin_a_client.post(url, {**values, "time_zone": " europe/warsaw "}).status_code == 302
    assert Schedule.objects.get().time_zone == "Europe/Warsaw"


def test_a_new_schedule_starts_in_the_organizations_zone(admin_a_client, world):
    make_configuration(world.org_a)
    response = admin_a_client.get(f"/o/{world.org_a.code}/schedules/new/")
    assert response.context["form"]["time_zone"].value() == "Europe/Warsaw"


def test_the_list_shows_the_next_run_in_the_schedules_zone(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    schedule = make_schedule(
        world.org_a,
        configuration,
        name="Tokyo nights",
        time=dt.time(23, 30),
        time_zone="Asia/Tokyo",
        start_date=dt.date(2099, 1, 1),
    )
    page = admin_a_client.get(f"/o/{world.org_a.code}/schedules/").content.decode()
    assert "2099-01-01 23:30 Asia/Tokyo" in page
    assert schedule.next_run_after(dt.datetime(2098, 1, 1, tzinfo=dt.UTC)).hour == 14  # UTC
