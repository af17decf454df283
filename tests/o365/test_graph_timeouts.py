"""Every outgoing request has the connect and read timeouts of the settings."""

import threading
import time

import pytest

from o365.graph import GraphUnavailable
from tests.factories import sim_configuration
from tests.o365.test_test_connection import point_at, silent_host  # noqa: F401 (fixture)


def within(seconds, call):
    """call()'s exception, or None; fails if it has not returned after `seconds`."""
    outcome = []

    def run():
        try:
            call()
            outcome.append(None)
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still waiting after {seconds} s"
    return outcome[0]


@pytest.fixture
def short_timeouts(settings):
    settings.KODO_HTTP_CONNECT_TIMEOUT = 0.5
    settings.KODO_HTTP_READ_TIMEOUT = 1


def test_a_token_request_to_a_silent_host_gives_up_after_the_timeouts(
    world,
    m365sim,
    silent_host,  # noqa: F811 (the fixture, imported above)
    short_timeouts,
):
    configuration = point_at(sim_configuration(world.org_a, m365sim), silent_host)
    client = configuration.graph_client(max_retries=0)

    error = within(8, client.token)  # the built-in timeouts alone would take 10 s

    assert isinstance(error, GraphUnavailable)
    assert silent_host.accepted


def test_a_graph_read_that_stalls_gives_up_after_the_read_timeout(
    world, m365sim, sim, short_timeouts
):
    configuration = sim_configuration(world.org_a, m365sim)
    client = configuration.graph_client(max_retries=0)
    user = sim.list_users()[0]
    client.token()
    sim.set_fault("drive", "stall", after_bytes=5, stall_seconds=20)

    started = time.monotonic()
    error = within(15, lambda: client.get(f"/users/{user['id']}/drive"))

    assert isinstance(error, GraphUnavailable)
    assert time.monotonic() - started < 15
