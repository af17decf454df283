"""One configuration's Retry-After holds every process working for it: two clients that share
nothing but the cache (as two worker processes do) wait out each other's throttling."""

import threading
import time

from o365.throttle import SharedThrottle
from tests.o365.conftest import sim_app


def _shared(m365sim):
    tenant_id, app = sim_app(m365sim)
    return SharedThrottle(tenant_id, app["client_id"])


def test_a_429_to_one_process_makes_another_process_wait(sim, m365sim, graph_client, sleeps):
    # Two clients with their own sessions, tokens and local throttle state, and one cache.
    first = graph_client(shared_throttle=_shared(m365sim))
    second = graph_client(shared_throttle=_shared(m365sim))
    first.token()
    second.token()
    sim.reset_stats()
    sim.set_fault("users", "429", max_count=1, retry_after=0.6)
    thread = threading.Thread(target=first.get, args=("/users",))
    thread.start()
    deadline = time.monotonic() + 10
    while not sleeps and time.monotonic() < deadline:  # until the first is told to wait
        time.sleep(0.01)

    second.get("/users/delta")

    thread.join()
    assert len(sleeps) == 2 and 0 < sleeps[1] <= 0.6  # the second waited out the first's 429
    assert sim.stats()["throttle_penalties"] == 0  # nobody came back inside the window


def test_the_window_is_per_tenant_and_app(m365sim):
    throttle = _shared(m365sim)
    other_app = SharedThrottle("00000000-0000-0000-0000-000000000001", "another-app")
    throttle.note(30)

    assert 29 < throttle.remaining() <= 30
    assert 29 < _shared(m365sim).remaining() <= 30  # a new process sees it
    assert other_app.remaining() == 0


def test_a_shorter_retry_after_never_shortens_the_window(m365sim):
    throttle = _shared(m365sim)
    throttle.note(30)
    _shared(m365sim).note(1)

    assert _shared(m365sim).remaining() > 29
