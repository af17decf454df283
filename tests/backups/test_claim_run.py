import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from backups.actions import claim_run, start_run
from backups.models import BackupRun
from tests.factories import mirror_users, sim_configuration


@pytest.fixture
def user(world, running_sim):
    configuration = sim_configuration(world.org_a, running_sim, name="Contoso")
    return mirror_users(configuration, running_sim.sim)[1]


def test_a_user_never_has_two_active_runs(user):
    first, created = start_run(user, enqueue=False)
    second, created_again = start_run(user, enqueue=False)

    assert created and not created_again
    assert second == first
    assert BackupRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_run_let_one_win(world, running_sim):
    configuration = sim_configuration(world.org_a, running_sim, name="Contoso")
    user = mirror_users(configuration, running_sim.sim)[1]
    run, _ = start_run(user, enqueue=False)
    barrier = threading.Barrier(4)
    outcomes = []

    def claim():
        barrier.wait()
        try:
            outcomes.append(claim_run(run.pk, run.organization_id).outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["busy", "busy", "busy", "claimed"]


def test_a_running_run_with_a_live_heartbeat_is_busy(user):
    run, _ = start_run(user, enqueue=False)
    assert claim_run(run.pk, run.organization_id).outcome == "claimed"
    assert claim_run(run.pk, run.organization_id).outcome == "busy"


def test_a_run_whose_worker_died_is_taken_over(user):
    run, _ = start_run(user, enqueue=False)
    first = claim_run(run.pk, run.organization_id).run
    BackupRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))

    second = claim_run(run.pk, run.organization_id)

    assert second.outcome == "claimed"
    assert second.run.claim_token != first.claim_token
    assert second.run.attempts == 2


def test_a_claim_rechecks_the_organization(user, world):
    run, _ = start_run(user, enqueue=False)
    assert claim_run(run.pk, world.org_b.pk).outcome == "missing"
    run.refresh_from_db()
    assert run.status == BackupRun.Status.QUEUED
