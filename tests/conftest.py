"""The shared world of every test: a server admin, organization A with an admin and a user, and
organization B with its admin (the outsider)."""

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model

from organizations.models import Membership, Organization
from tests.factories import PASSWORD, make_account


@dataclass
class World:
    server_admin: object
    org_a: Organization
    admin_a: object
    user_a: object
    org_b: Organization
    admin_b: object


@pytest.fixture(autouse=True)
def empty_cache():
    """Rate limits and throttling state live in the cache: each test starts without them."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db):
    org_a = Organization.objects.create(
        name="Alpha University", services_enabled=True, time_zone="Europe/Warsaw"
    )
    org_b = Organization.objects.create(name="Beta MSP", services_enabled=True)
    return World(
        server_admin=get_user_model().objects.create_superuser(
            username="root@kodo.example", email="root@kodo.example", password=PASSWORD
        ),
        org_a=org_a,
        admin_a=make_account("admin@alpha.example", org_a, first_name="Ada", last_name="Alpha"),
        user_a=make_account("user@alpha.example", org_a, role=Membership.Role.USER),
        org_b=org_b,
        admin_b=make_account("admin@beta.example", org_b),
    )


def _client_for(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def admin_a_client(client, world):
    return _client_for(client, world.admin_a)


@pytest.fixture
def admin_b_client(client, world):
    return _client_for(client, world.admin_b)


@pytest.fixture
def server_admin_client(client, world):
    return _client_for(client, world.server_admin)


def _database_url_for_workers():
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


# Threads per test worker process; interactive has the Procfile's 2 (tests/kodo/test_queues.py
# fills them with one organization's jobs).
TEST_WORKER_THREADS = {"interactive": 2, "backup": 3, "maintenance": 2}


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """Real Celery worker processes on the configured broker, using the test database: one per
    group of queues, as `make run` starts them (kodo.celery.WORKERS), so every queue is consumed.

    Tests that need the workers to see their rows use `transactional_db`."""
    import os
    import subprocess
    import sys

    from kodo.celery import QUEUES, WORKERS, app

    with django_db_blocker.unblock():
        database_url = _database_url_for_workers()
    with app.connection_for_write() as connection:
        for queue in QUEUES:
            connection.default_channel.queue_purge(queue)
    processes = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "kodo",
                "worker",
                "--pool=threads",
                f"--concurrency={TEST_WORKER_THREADS[name]}",
                "-Q",
                ",".join(queues),
                "-n",
                f"{name}-test@%h",
                "--loglevel=WARNING",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            env={**os.environ, "DATABASE_URL": database_url},
        )
        for name, queues in WORKERS.items()
    }
    yield processes
    for process in processes.values():
        process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def m365sim(tmp_path_factory):
    """The running simulator: `.info` (endpoints, CA file, tenants and app credentials), `.sim`."""
    from m365sim import BACKUP_ROLES, Simulator

    sim = Simulator.generate(
        seed=404,
        users=30,
        files_per_user=4,
        users_without_drive=3,
        apps=[
            {"name": "Kodo Backup", "roles": BACKUP_ROLES},
            {"name": "Kodo Backup (no files)", "roles": ["User.Read.All"]},
        ],
    )
    running = sim.serve(state_dir=tmp_path_factory.mktemp("m365sim"))
    yield running
    running.stop()


@pytest.fixture
def sim(m365sim):
    """The Simulator; faults injected by the test are cleared afterwards."""
    yield m365sim.sim
    m365sim.sim.clear_faults()


@pytest.fixture(scope="session")
def sim_state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("m365sim-backups")


@pytest.fixture
def running_sim(sim_state_dir):
    """A running m365sim: 3 users with a OneDrive (about 15 small files each; the first also has
    a malware-flagged file and a OneNote notebook) and 1 without."""
    from m365sim import Simulator

    sim = Simulator.generate(
        seed=66, users=4, files_per_user=15, size_mix="small", users_without_drive=1
    )
    running = sim.serve(state_dir=sim_state_dir)
    yield running
    running.stop()
