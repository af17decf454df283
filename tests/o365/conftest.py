"""Graph clients pointed at the session's m365sim (the `m365sim` fixture in tests/conftest.py).

The simulated tenant has two apps: "Kodo Backup" (every permission Kodo needs) and
"Kodo Backup (no files)" (User.Read.All only), and three users without a OneDrive (one per
error Microsoft gives for them). Tests that inject faults use `sim`, which clears them after.
"""

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from o365.clouds import custom_endpoints
from o365.graph import Credentials, GraphClient


def sim_app(running, name="Kodo Backup", tenant_index=0):
    tenant = running.info["tenants"][tenant_index]
    return tenant["tenant_id"], next(a for a in tenant["apps"] if a["name"] == name)


def sim_credentials(running, name="Kodo Backup", certificate=False, **overrides):
    tenant_id, app = sim_app(running, name)
    if certificate:
        values = {
            "tenant_id": tenant_id,
            "client_id": app["client_id"],
            "pfx": Path(app["pfx_path"]).read_bytes(),
            "pfx_password": app["pfx_password"],
        }
    else:
        values = {
            "tenant_id": tenant_id,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        }
    return Credentials(**{**values, **overrides})


def sim_endpoints(running, trust_ca=True, **options):
    """The simulator as a custom cloud: on loopback (private network allowed), downloads from its
    download host."""
    ca_pem = Path(running.info["ca_file"]).read_text() if trust_ca else None
    options.setdefault("download_hosts", urlsplit(running.info["download_base"]).netloc)
    options.setdefault("private_network", True)
    return custom_endpoints(
        running.info["authority_host"], running.info["graph_base"], ca_pem, **options
    )


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
        client = GraphClient(
            credentials or sim_credentials(m365sim), endpoints or sim_endpoints(m365sim), **options
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
