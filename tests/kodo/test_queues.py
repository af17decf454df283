"""Celery work is routed to queues by kind, consumed by separate workers, and shared fairly
between organizations: one organization's hanging work cannot hold another's."""

import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kodo.celery import QUEUES, ROUTES, WORKERS, app, queue_of
from kodo.fairness import take_slot

BASE_DIR = Path(__file__).resolve().parents[2]


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_every_task_is_routed_to_a_queue_by_kind():
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if not name.startswith("celery.")}
    assert ours - set(ROUTES) == set(), "name the queue of every task in kodo/celery.py"
    assert set(ROUTES.values()) <= set(QUEUES)
    assert queue_of("o365.tasks.run_directory_job") == "interactive"
    assert queue_of("o365.tasks.auto_synchronize") == "interactive"
    assert queue_of("backups.tasks.run_backup") == "backup"
    assert queue_of("schedules.tasks.fire_schedule") == "backup"
    assert queue_of("backups.tasks.prune_organization") == "maintenance"
    assert queue_of("schedules.tasks.send_summary_reports") == "maintenance"


def test_a_task_is_sent_to_its_queue():
    from o365.tasks import run_directory_job

    assert app.amqp.router.route({}, run_directory_job.name)["queue"].name == "interactive"


def test_the_procfile_starts_a_worker_for_every_queue():
    procfile = (BASE_DIR / "Procfile").read_text()
    consumed = [
        tuple(match.group(1).split(","))
        for match in re.finditer(r"celery -A kodo worker .*?-Q (\S+)", procfile)
    ]
    assert sorted(consumed) == sorted(WORKERS.values())
    assert sorted(q for queues in consumed for q in queues) == sorted(QUEUES)
    assert "worker_prefetch_multiplier" in app.conf and app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_acks_late is True


def test_an_organization_gets_its_share_of_slots_and_no_more(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first, second = take_slot("backup", 1, 2), take_slot("backup", 1, 2)
    assert first is not None and second is not None
    assert take_slot("backup", 1, 2) is None
    other = take_slot("backup", 2, 2)  # another organization is not held up
    assert other is not None
    first.release()
    again = take_slot("backup", 1, 2)
    assert again is not None
    for slot in (second, other, again):
        slot.release()


def test_a_slot_is_exclusive_between_threads(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    taken = []
    threads = [
        threading.Thread(target=lambda: taken.append(take_slot("interactive", 7, 1)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    held = [slot for slot in taken if slot is not None]
    assert len(taken) == 8 and len(held) == 1
    held[0].release()


@pytest.fixture
def redis_url(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)

    def answers():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    assert wait_for(answers, 20)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)


def test_slots_live_in_redis_when_it_is_the_broker(settings, redis_url):
    import redis

    settings.CELERY_BROKER_URL = redis_url
    slot = take_slot("backup", 3, 1)
    assert slot is not None and take_slot("backup", 3, 1) is None
    assert 0 < redis.Redis.from_url(redis_url).ttl("kodo:share:backup:3:0") <= 60
    slot.release()
    assert take_slot("backup", 3, 1) is not None


# With real workers (tests/conftest.py `celery_worker`: one process per group of queues).


def _import(client, organization, user, configuration):
    client.force_login(user)
    client.post(f"/o/{organization.code}/services/office365/users/{configuration.code}/import/")


def _succeeded(configuration):
    from o365.models import DirectoryJob

    job = DirectoryJob.objects.filter(configuration=configuration).first()
    return job is not None and job.status == DirectoryJob.Status.SUCCEEDED


def _fired(sim, endpoint):
    return sum(f["fired"] for f in sim.list_faults() if f["endpoint"] == endpoint)


@pytest.mark.django_db(transaction=True)
def test_an_import_completes_while_another_organizations_backups_hang(
    world, sim, m365sim, running_sim, celery_worker, client
):
    from backups.actions import start_run
    from tests.factories import mirror_users, sim_configuration

    hanging = sim_configuration(world.org_a, m365sim)
    sim.set_fault("drive_delta", "stall", after_bytes=0, stall_seconds=40)
    for user in mirror_users(hanging, sim)[:5]:
        start_run(user)
    assert wait_for(lambda: _fired(sim, "drive_delta") >= 2, 30), "the backups did not start"

    other = sim_configuration(world.org_b, running_sim)
    _import(client, world.org_b, world.admin_b, other)

    # The stalled backups hold their worker 40 s: the import must not wait for them.
    assert wait_for(lambda: _succeeded(other), 20)


@pytest.mark.django_db(transaction=True)
def test_one_organizations_hanging_imports_leave_a_worker_to_another(
    world, sim, m365sim, running_sim, celery_worker, client
):
    from tests.factories import sim_configuration

    sim.set_fault("users", "stall", after_bytes=0, stall_seconds=40)
    sim.set_fault("users_delta", "stall", after_bytes=0, stall_seconds=40)
    first = sim_configuration(world.org_a, m365sim, name="First")
    second = sim_configuration(world.org_a, m365sim, name="Second")
    _import(client, world.org_a, world.admin_a, first)
    _import(client, world.org_a, world.admin_a, second)
    assert wait_for(lambda: _fired(sim, "users") + _fired(sim, "users_delta") >= 1, 30)

    other = sim_configuration(world.org_b, running_sim)
    _import(client, world.org_b, world.admin_b, other)

    # The interactive worker has 2 threads; organization A's share is 1, so its second import
    # waits for its first instead of taking the thread organization B needs.
    assert wait_for(lambda: _succeeded(other), 20)
