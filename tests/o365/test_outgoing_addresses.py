"""Kodo connects only over https, only to its cloud's hosts, and to loopback, link-local or
private addresses only for a cloud the server administrator marked private; the address is
checked after DNS resolution, on the connection made. A refused destination is never connected
to: a listening socket started here proves it."""

import socket
import threading
import time
import uuid

import pytest

from o365.clouds import CLOUDS, custom_endpoints
from o365.graph import DestinationRefused, GraphClient
from o365.graph.transport import refused_address
from tests.o365.conftest import sim_credentials, sim_endpoints


class Listener:
    """A TCP socket on loopback that counts the connections it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def connections(self):
        """What was accepted, once a connection that did come would have been counted."""
        probe = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        probe.close()
        deadline = time.monotonic() + 5
        while self.accepted < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.accepted - 1  # less the probe

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def _client(endpoints, credentials=None):
    credentials = credentials or sim_credentials_for_tests()
    return GraphClient(credentials, endpoints, cache_key=f"test-{uuid.uuid4()}", max_retries=0)


def sim_credentials_for_tests():
    from o365.graph import Credentials

    return Credentials(
        tenant_id=str(uuid.uuid4()), client_id=str(uuid.uuid4()), client_secret="not-sent-anywhere"
    )


def test_a_plain_http_download_url_is_refused_and_never_fetched(m365sim, listener):
    client = _client(sim_endpoints(m365sim), sim_credentials(m365sim))

    with pytest.raises(DestinationRefused, match="only https"):
        client.request(
            "GET", f"http://127.0.0.1:{listener.port}/file", stream=True, authenticated=False
        )

    assert listener.connections() == 0


def test_a_download_url_on_a_host_the_cloud_does_not_allow_is_refused(m365sim, listener):
    client = _client(sim_endpoints(m365sim), sim_credentials(m365sim))

    with pytest.raises(DestinationRefused, match="not a sign-in, Graph or download host"):
        client.request(
            "GET", f"https://127.0.0.1:{listener.port}/file", stream=True, authenticated=False
        )

    assert listener.connections() == 0


def test_a_loopback_address_is_refused_for_a_cloud_not_marked_private(listener):
    endpoints = custom_endpoints(
        "https://login.alpha.example",
        "https://graph.alpha.example/v1.0",
        download_hosts=f"127.0.0.1:{listener.port}",
    )
    client = _client(endpoints)

    with pytest.raises(DestinationRefused, match="loopback, link-local or private"):
        client.request(
            "GET", f"https://127.0.0.1:{listener.port}/file", stream=True, authenticated=False
        )

    assert listener.connections() == 0


def test_dns_rebinding_an_allowed_name_to_a_private_address_is_refused(listener, monkeypatch):
    endpoints = CLOUDS["global"]  # *.sharepoint.com is an allowed download host
    real_getaddrinfo = socket.getaddrinfo
    asked = []

    def rebinding(host, port, *args, **kwargs):
        if host == "contoso-my.sharepoint.com":
            asked.append(host)
            return real_getaddrinfo("127.0.0.1", listener.port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    client = _client(endpoints)

    with pytest.raises(DestinationRefused, match="loopback, link-local or private"):
        client.request(
            "GET",
            "https://contoso-my.sharepoint.com/personal/a/file",
            stream=True,
            authenticated=False,
        )

    assert asked  # the name was resolved, and its address refused
    assert listener.connections() == 0


def test_the_token_request_goes_through_the_same_guard(listener, monkeypatch):
    # MSAL's own requests (discovery, token) use Kodo's session: a sign-in host that resolves to
    # a private address is refused like any other request, the secret never sent.
    real_getaddrinfo = socket.getaddrinfo

    def private(host, port, *args, **kwargs):
        if host == "login.alpha.example":
            return real_getaddrinfo("127.0.0.1", listener.port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", private)
    endpoints = custom_endpoints(
        f"https://login.alpha.example:{listener.port}", "https://graph.alpha.example/v1.0"
    )
    client = _client(endpoints)

    with pytest.raises(DestinationRefused, match="loopback, link-local or private"):
        client.token()

    assert listener.connections() == 0


def test_a_private_cloud_may_use_loopback(m365sim, listener):
    client = _client(sim_endpoints(m365sim), sim_credentials(m365sim))

    assert client.roles()  # m365sim on 127.0.0.1: signed in


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "fe80::1%eth0",
    ],
)
def test_non_public_addresses_are_refused(address):
    assert refused_address(address)


@pytest.mark.parametrize("address", ["20.190.128.1", "13.107.6.152", "2603:1006::1"])
def test_public_addresses_are_allowed(address):
    assert not refused_address(address)
