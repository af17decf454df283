"""m365sim for the o365 tests: one simulator per test session (over HTTPS, with its own CA),
and Graph clients pointed at it.

The simulated tenant has two apps: "Kodo Backup" (every permission Kodo needs) and
"Kodo Backup (no files)" (User.Read.All only), and three users without a OneDrive (one per
error Microsoft gives for them). Tests that inject faults use `sim`, which clears them after.
"""

import uuid
from pathlib import Path

import pytest

from o365.clouds import custom_endpoints
from o365.graph import Credentials, GraphClient


@pytest.fixture(scope="session")
def m365sim(tmp_path_factory):
    """The running simulator: `.info` (endpoints, CA file, tenants and app credentials), `.sim`."""
    from m365sim import BACKUP_ROLES, Simulator

    sim = Simulator.generate(
        seed=404, users=30, files_per_user=4, users_without_drive=3,
        apps=[{"name": "Kodo Backup", "roles": BACKUP_ROLES},
              {"name": "Kodo Backup (no files)", "roles": ["User.Read.All"]}])
    running = sim.serve(state_dir=tmp_path_factory.mktemp("m365sim"))
    yield running
    running.stop()


@pytest.fixture
def sim(m365sim):
    """The Simulator; faults injected by the test are cleared afterwards."""
    yield m365sim.sim
    m365sim.sim.clear_faults()


def sim_app(running, name="Kodo Backup", tenant_index=0):
    tenant = running.info["tenants"][tenant_index]
    return tenant["tenant_id"], next(a for a in tenant["apps"] if a["name"] == name)


def sim_credentials(running, name="Kodo Backup", certificate=False, **overrides):
    tenant_id, app = sim_app(running, name)
    if certificate:
        values = {"tenant_id": tenant_id, "client_id": app["client_id"],
                  "pfx": Path(app["pfx_path"]).read_bytes(), "pfx_password": app["pfx_password"]}
    else:
        values = {"tenant_id": tenant_id, "client_id": app["client_id"],
                  "client_secret": app["client_secret"]}
    return Credentials(**{**values, **overrides})


def sim_endpoints(running, trust_ca=True):
    ca_pem = Path(running.info["ca_file"]).read_text() if trust_ca else None
    return custom_endpoints(running.info["authority_host"], running.info["graph_base"], ca_pem)


class Sleeps(list):
    """An injectable sleep that records each wait and really waits it (m365sim throttles a
    client that comes back before its Retry-After)."""

    def __call__(self, seconds):
        import time

        self.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def graph_client(m365sim, sleeps):
    """make(credentials=None, endpoints=None, **options) -> a GraphClient on the simulator with
    its own token cache (a fresh cache_key), recording its sleeps in `sleeps`."""
    clients = []

    def make(credentials=None, endpoints=None, **options):
        options.setdefault("sleep", sleeps)
        options.setdefault("backoff_base", 0.01)
        options.setdefault("cache_key", f"test-{uuid.uuid4()}")
        client = GraphClient(credentials or sim_credentials(m365sim),
                             endpoints or sim_endpoints(m365sim), **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
