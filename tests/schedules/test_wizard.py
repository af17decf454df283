import datetime as dt

import pytest
from django_celery_beat.models import PeriodicTask

from organizations.models import AuditEvent
from schedules.actions import do_fire_schedule
from schedules.models import Schedule
from tests.factories import make_configuration, make_schedule, mirror, wizard_values


@pytest.fixture
def configuration(world):
    return make_configuration(world.org_a)


def _url(world, suffix="new/"):
    return f"/o/{world.org_a.code}/schedules/{suffix}"


def test_the_wizard_walks_through_its_steps(admin_a_client, world, configuration):
    page = admin_a_client.get(_url(world)).content.decode()
    assert "Step 1: What to back up" in page and "Next" in page
    values = wizard_values(configuration)
    for step, title in ((1, "When"), (2, "Retention and notifications"), (3, "Review")):
        page = admin_a_client.post(_url(world), {**values, "step": step, "action": "next"})
        assert f"Step {step + 1}: {title}" in page.content.decode()
    back = admin_a_client.post(_url(world), {**values, "step": 3, "action": "back"})
    assert "Step 2: When" in back.content.decode()
    review = admin_a_client.post(_url(world), {**values, "step": 3, "action": "next"})
    text = review.content.decode()
    assert "SAVE" in text and "Daily at 23:15 Europe/Warsaw, starting on 2026-12-01" in text
    assert "6 months" in text and "Next runs (Europe/Warsaw)" in text
    one = admin_a_client.post(
        _url(world), {**values, "keep_deleted_for": "1", "step": 3, "action": "next"}
    )
    assert "<dd>1 months</dd>" not in one.content.decode()
    assert "<dd>1 month</dd>" in one.content.decode()
    assert len(review.context["next_runs"]) == 5

    response = admin_a_client.post(_url(world), {**values, "step": 4, "action": "save"})
    assert response.status_code == 302
    schedule = Schedule.objects.get()
    assert (schedule.time, schedule.time_zone, schedule.keep_deleted_unit) == (
        dt.time(23, 15),
        "Europe/Warsaw",
        "months",
    )
    task = schedule.periodic_task
    assert task.task == "schedules.tasks.fire_schedule" and task.args == f"[{schedule.pk}]"
    assert (
        task.crontab.minute,
        task.crontab.hour,
        task.crontab.day_of_week,
        str(task.crontab.timezone),
    ) == ("15", "23", "*", "Europe/Warsaw")
    assert AuditEvent.objects.filter(action="schedule_created").exists()


def test_the_review_is_reached_only_when_every_step_is_valid(admin_a_client, world, configuration):
    page = admin_a_client.post(
        _url(world), {**wizard_values(configuration, name=""), "step": 3, "action": "next"}
    ).content.decode()
    assert "Step 1: What to back up" in page and "This field is required." in page


def test_a_step_with_errors_stays_and_says_why(admin_a_client, world, configuration):
    page = admin_a_client.post(
        _url(world), {**wizard_values(configuration, name=""), "step": 1, "action": "next"}
    ).content.decode()
    assert "Step 1:" in page and "This field is required." in page
    # Errors of later steps are not shown early.
    page = admin_a_client.post(
        _url(world),
        {**wizard_values(configuration, frequency="weekly"), "step": 1, "action": "next"},
    ).content.decode()
    assert "Step 2: When" in page and "Choose at least one day" not in page


@pytest.mark.parametrize(
    ("overrides", "message", "step"),
    [
        ({"frequency": "weekly"}, "Choose at least one day of the week.", 2),
        ({"scope": "chosen"}, "Choose at least one user", 1),
        ({"every_hours": "0", "frequency": "hourly"}, "greater than or equal to 1", 2),
        ({"time_zone": "Moon/Base"}, "is not a time zone", 2),
        ({"keep_versions": "0"}, "greater than or equal to 1", 3),
        ({"time": "25:00"}, "Enter a valid time.", 2),
    ],
)
def test_save_returns_to_the_first_step_with_an_error(
    admin_a_client, world, configuration, overrides, message, step
):
    page = admin_a_client.post(
        _url(world), {**wizard_values(configuration, **overrides), "step": 4, "action": "save"}
    ).content.decode()
    assert f"Step {step}:" in page and message in page
    assert not Schedule.objects.exists()


def test_weekly_and_hourly_schedules_get_their_beat_entries(admin_a_client, world, configuration):
    admin_a_client.post(
        _url(world),
        {
            **wizard_values(configuration, frequency="weekly", weekdays=["0", "6"]),
            "step": 4,
            "action": "save",
        },
    )
    admin_a_client.post(
        _url(world),
        {
            **wizard_values(configuration, name="Often", frequency="hourly", every_hours="4"),
            "step": 4,
            "action": "save",
        },
    )
    weekly = Schedule.objects.get(name="Nightly")
    assert weekly.weekdays == [0, 6] and weekly.periodic_task.crontab.day_of_week == "1,0"
    hourly = Schedule.objects.get(name="Often").periodic_task
    assert (hourly.interval.every, hourly.interval.period, hourly.crontab) == (4, "hours", None)


def test_chosen_users_and_new_users(admin_a_client, world, configuration):
    users = mirror(configuration, 3)
    admin_a_client.post(
        _url(world),
        {
            **wizard_values(configuration, scope="chosen", users=[users[0].pk, users[2].pk]),
            "step": 4,
            "action": "save",
        },
    )
    schedule = Schedule.objects.get()
    assert set(schedule.users_for_firing()) == {users[0], users[2]}
    schedule.include_new_users = True
    schedule.save()
    later = mirror(configuration, 1, prefix="new")[0]
    assert later in set(schedule.users_for_firing())
    assert users[1] not in set(schedule.users_for_firing())


def test_users_of_another_organization_cannot_be_chosen(admin_a_client, world, configuration):
    outsider = mirror(make_configuration(world.org_b, name="B"), 1, prefix="b")[0]
    page = admin_a_client.post(
        _url(world),
        {
            **wizard_values(configuration, scope="chosen", users=[outsider.pk]),
            "step": 4,
            "action": "save",
        },
    ).content.decode()
    assert "Select a valid choice" in page and not Schedule.objects.exists()


def test_editing_keeps_the_beat_entry_in_step(admin_a_client, world, configuration):
    schedule = make_schedule(world.org_a, configuration)
    task_id = schedule.periodic_task_id
    page = admin_a_client.get(_url(world, f"{schedule.code}/")).content.decode()
    assert 'value="Nightly"' in page
    admin_a_client.post(
        _url(world, f"{schedule.code}/"),
        {
            **wizard_values(configuration, time="05:45", time_zone="America/New_York"),
            "step": 4,
            "action": "save",
        },
    )
    schedule.refresh_from_db()
    assert schedule.periodic_task_id == task_id
    assert (schedule.periodic_task.crontab.hour, str(schedule.periodic_task.crontab.timezone)) == (
        "5",
        "America/New_York",
    )


def test_disable_enable_and_delete(admin_a_client, world, configuration):
    schedule = make_schedule(world.org_a, configuration)
    admin_a_client.post(_url(world, f"{schedule.code}/toggle/"))
    schedule.refresh_from_db()
    assert not schedule.enabled and not schedule.periodic_task.enabled
    admin_a_client.post(_url(world, f"{schedule.code}/toggle/"))
    schedule.refresh_from_db()
    assert schedule.enabled and schedule.periodic_task.enabled
    admin_a_client.post(_url(world, f"{schedule.code}/delete/"))
    assert (
        not Schedule.objects.exists()
        and not PeriodicTask.objects.filter(task="schedules.tasks.fire_schedule").exists()
    )


def test_the_list_shows_next_and_last_run(
    admin_a_client, world, configuration, django_assert_max_num_queries
):
    do_fire_schedule(make_schedule(world.org_a, configuration, name="S0", scope="chosen"))
    with django_assert_max_num_queries(10) as few:
        admin_a_client.get(_url(world, ""))
    users = mirror(configuration, 3)
    for i in range(1, 6):
        schedule = make_schedule(world.org_a, configuration, name=f"S{i}", scope="chosen")
        schedule.users.set(users)
        do_fire_schedule(schedule)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = admin_a_client.get(_url(world, "")).content.decode()
    assert "+ ADD SCHEDULE" in page and "Daily at 22:00 UTC" in page and "Running" in page
    assert "3 chosen users" in page


def test_without_a_configuration_the_wizard_sends_to_configuration(admin_a_client, world):
    response = admin_a_client.get(_url(world))
    assert response["Location"].endswith("/services/office365/configuration/")
