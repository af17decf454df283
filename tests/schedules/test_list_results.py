"""The Schedules list's last result, asked of the database (EXISTS per status group, never every
run of the firing loaded), says what ScheduleFiring.result says."""

import itertools

import pytest

from backups.models import BackupRun
from schedules.actions import do_fire_schedule
from schedules.models import ScheduleFiring
from schedules.views import _result, _with_result_flags
from tests.factories import make_configuration, make_finished_run, make_schedule, mirror

STATUSES = [choice.value for choice in BackupRun.Status]


@pytest.fixture
def configuration(world):
    return make_configuration(world.org_a)


def _firing(schedule, users, statuses):
    firing = ScheduleFiring.objects.create(schedule=schedule)
    made = zip(users[: len(statuses)], statuses, strict=True)
    firing.runs.set(make_finished_run(user, status=status) for user, status in made)
    return firing


def _badge(client, world):
    page = client.get(f"/o/{world.org_a.code}/schedules/").content.decode()
    row = page.split("<tbody", 1)[1]
    for words in ("Succeeded", "Failed", "Warnings", "Running", "No users"):
        if f">{words}</span>" in row:
            return words
    raise AssertionError("no result badge in the list")


@pytest.mark.parametrize(
    "statuses, badge",
    [
        (["succeeded"] * 4, "Succeeded"),  # a finished firing
        (["succeeded", "succeeded", "failed", "partial"], "Failed"),  # partly failed
        (["succeeded", "skipped", "partial"], "Warnings"),
        (["succeeded", "failed", "running"], "Running"),
        ([], "No users"),
    ],
)
def test_the_list_shows_the_last_firings_result(
    admin_a_client, world, configuration, statuses, badge
):
    users = mirror(configuration, 4)
    schedule = make_schedule(world.org_a, configuration)
    _firing(schedule, users, ["failed"] * 4)  # an older firing does not count
    firing = _firing(schedule, users, statuses)
    assert _badge(admin_a_client, world) == badge
    flagged = _with_result_flags(ScheduleFiring.objects.filter(pk=firing.pk)).get()
    assert _result(flagged) == firing.result


def test_the_query_agrees_with_the_model_on_every_mix_of_statuses(world, configuration):
    users = mirror(configuration, 3)
    schedule = make_schedule(world.org_a, configuration)
    firings = [
        _firing(schedule, users, mix)
        for size in range(4)
        for mix in itertools.combinations_with_replacement(STATUSES, size)
    ]
    flagged = {f.pk: _result(f) for f in _with_result_flags(ScheduleFiring.objects.all())}
    assert flagged == {f.pk: f.result for f in firings}
    assert set(flagged.values()) == {"empty", "running", "failed", "warning", "succeeded"}


def test_a_real_firings_runs_are_found_partly_failed_then_finished(
    admin_a_client, world, configuration
):
    """do_fire_schedule makes the runs as it fires: inside the window the query walks."""
    schedule = make_schedule(world.org_a, configuration, scope="chosen")
    schedule.users.set(mirror(configuration, 3))
    firing = do_fire_schedule(schedule)
    runs = firing.runs.order_by("pk")
    assert _badge(admin_a_client, world) == "Running"
    BackupRun.objects.filter(pk__in=runs.values("pk")).update(status="succeeded")
    BackupRun.objects.filter(pk=runs[0].pk).update(status="failed")
    assert _badge(admin_a_client, world) == "Failed" and firing.result == "failed"
    BackupRun.objects.filter(pk=runs[0].pk).update(status="succeeded")
    assert _badge(admin_a_client, world) == "Succeeded" and firing.result == "succeeded"


def test_a_firing_that_reused_a_run_started_days_before_shows_it(
    admin_a_client, world, configuration
):
    """start_run gives a firing the user's run that is still going (a first backup of a large
    OneDrive can take days): outside the window the query walks, the result is still right."""
    import datetime as dt

    from django.utils import timezone

    from schedules.views import FIRING_RUNS_WINDOW

    users = mirror(configuration, 2)
    schedule = make_schedule(world.org_a, configuration)
    firing = _firing(schedule, users, ["running", "succeeded"])
    long_ago = timezone.now() - FIRING_RUNS_WINDOW - dt.timedelta(days=2)
    BackupRun.objects.filter(status="running").update(created_at=long_ago)
    assert _badge(admin_a_client, world) == "Running"
    BackupRun.objects.filter(status="running").update(status="failed")
    assert _badge(admin_a_client, world) == "Failed" and firing.result == "failed"
