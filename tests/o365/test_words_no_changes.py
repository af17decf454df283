"""SYNCHRONIZE USERS that found nothing new says "No changes since <time>", not a list of zeros
(issue 14 §4): on the job page, its live fragment and the Tasks page."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from o365 import actions
from o365.models import DirectoryJob
from tests.factories import make_configuration, sim_configuration

EARLIER = dt.datetime(2026, 12, 1, 7, 30, tzinfo=dt.UTC)


def _job(configuration, kind=DirectoryJob.Kind.SYNC, finished_at=None, **counts):
    job = DirectoryJob.objects.create(
        configuration=configuration, kind=kind, status=DirectoryJob.Status.SUCCEEDED, **counts
    )
    finished_at = finished_at or timezone.now()
    DirectoryJob.objects.filter(pk=job.pk).update(
        created_at=finished_at - dt.timedelta(minutes=1), finished_at=finished_at
    )
    job.refresh_from_db()
    return job


def _page(client, org, job, **headers):
    url = reverse("o365:directory-job", args=[org.code, job.configuration.code, job.code])
    return client.get(url, headers=headers).content.decode()


def test_a_synchronization_with_no_changes_says_since_when(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    _job(configuration, kind=DirectoryJob.Kind.IMPORT, finished_at=EARLIER, created=40)
    job = _job(configuration, users_seen=0)

    assert job.changed_nothing and job.summary == "No changes since 2026-12-01 07:30"
    for html in (
        _page(admin_a_client, world.org_a, job),
        _page(admin_a_client, world.org_a, job, **{"HX-Request": "true"}),
    ):
        assert "No changes since 2026-12-01 07:30 UTC" in html
        assert "Microsoft 365 reported no change to the users" in html
        assert "<dt>Created</dt>" not in html  # no column of zeros


def test_the_tasks_page_says_it_in_the_organizations_time_zone(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    _job(configuration, kind=DirectoryJob.Kind.IMPORT, finished_at=EARLIER, created=40)
    _job(configuration)
    html = admin_a_client.get(f"/o/{world.org_a.code}/tasks/").content.decode()
    assert "No changes since 2026-12-01 08:30" in html  # Europe/Warsaw


def test_the_first_job_with_nothing_to_do_says_no_changes(world):
    configuration = make_configuration(world.org_b)
    assert _job(configuration).summary == "No changes"


def test_a_job_that_changed_something_keeps_its_counts(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    _job(configuration, finished_at=EARLIER)
    job = _job(configuration, users_seen=3, updated=2, removed=1)
    assert not job.changed_nothing
    assert job.summary == "3 users: 0 created, 2 updated, 1 removed"
    html = _page(admin_a_client, world.org_a, job)
    assert "No changes" not in html and "<dt>Updated</dt><dd>2</dd>" in html


@pytest.mark.parametrize("counts", [{"errors": 1}, {"conflicts": 1}, {"linked": 1}])
def test_problems_and_links_are_not_no_changes(world, counts):
    assert not _job(make_configuration(world.org_a), **counts).changed_nothing


def test_a_failed_or_running_job_is_not_no_changes(world):
    configuration = make_configuration(world.org_a)
    failed = _job(configuration)
    failed.status = DirectoryJob.Status.FAILED
    running = DirectoryJob(configuration=configuration, status=DirectoryJob.Status.RUNNING)
    assert not failed.changed_nothing and not running.changed_nothing


@pytest.fixture
def tenant(tmp_path):
    from m365sim import Simulator

    sim = Simulator.generate(seed=7, users=8, files_per_user=0)
    with sim.serve(state_dir=tmp_path) as running:
        running.sim = sim
        yield running


def test_a_real_second_synchronization_says_no_changes(tenant, world, admin_a_client):
    configuration = sim_configuration(world.org_a, tenant)
    for kind in ("import", "sync"):
        job = DirectoryJob.objects.create(configuration=configuration, kind=kind)
        actions.do_run_directory_job(job.pk)
    job.refresh_from_db()
    first = DirectoryJob.objects.get(configuration=configuration, kind="import")
    assert job.status == "succeeded" and job.changed_nothing
    when = timezone.localtime(first.finished_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
    assert f"No changes since {when} UTC" in _page(admin_a_client, world.org_a, job)
