import logging
import time

import pytest

from o365.models import Configuration
from organizations.models import AuditEvent
from tests.factories import sim_configuration


def _test(client, world, configuration):
    url = f"/o/{world.org_a.code}/services/office365/configuration/{configuration.code}/test/"
    return client.post(url, follow=True)


@pytest.mark.parametrize("certificate", [False, True])
def test_test_connection_succeeds_against_m365sim(admin_a_client, world, m365sim, certificate):
    configuration = sim_configuration(world.org_a, m365sim, certificate=certificate)
    page = _test(admin_a_client, world, configuration).content.decode()
    assert "Connection OK" in page and "Restore: possible." in page
    configuration.refresh_from_db()
    assert configuration.last_test_ok is True and configuration.last_test_at is not None
    assert "Files.Read.All" in configuration.last_test_roles
    assert AuditEvent.objects.filter(
        action="configuration_tested", message__endswith="success."
    ).exists()


def test_test_connection_says_when_restore_is_not_possible(admin_a_client, world, m365sim):
    from o365.graph import forget_tokens

    app = next(a for a in m365sim.info["tenants"][0]["apps"] if a["name"] == "Kodo Backup")
    sim = m365sim.sim
    granted = list(
        next(a for t in sim.tenants for a in t.apps if a.client_id == app["client_id"]).roles
    )
    sim.set_app_roles(app["client_id"], ["User.Read.All", "Files.Read.All"])
    forget_tokens()
    try:
        configuration = sim_configuration(world.org_a, m365sim)
        page = _test(admin_a_client, world, configuration).content.decode()
    finally:
        sim.set_app_roles(app["client_id"], granted)
        forget_tokens()
    assert "Connection OK" in page  # backups work
    assert "Restore is not possible: the app lacks Files.ReadWrite.All." in page


def test_test_connection_names_a_missing_permission(admin_a_client, world, m365sim):
    configuration = sim_configuration(world.org_a, m365sim, app_name="Kodo Backup (no files)")
    page = _test(admin_a_client, world, configuration).content.decode()
    assert "lacks these permissions: Files.Read.All" in page
    assert "Grant admin consent" in page
    configuration.refresh_from_db()
    assert configuration.last_test_ok is False and configuration.last_test_missing == [
        "Files.Read.All"
    ]


def test_a_wrong_secret_is_reported_without_showing_it(admin_a_client, world, m365sim):
    configuration = sim_configuration(world.org_a, m365sim)
    configuration.set_client_secret("wrong-secret-value-123")
    configuration.save()
    page = _test(admin_a_client, world, configuration).content.decode()
    assert "could not sign in" in page and "AADSTS7000215" in page
    assert "wrong-secret-value-123" not in page


def test_secrets_never_reach_the_database_pages_or_logs(admin_a_client, world, m365sim, caplog):
    from django.db import connection

    caplog.set_level(logging.DEBUG)
    tenant = m365sim.info["tenants"][0]
    app = tenant["apps"][0]
    configuration = sim_configuration(world.org_a, m365sim, certificate=True)
    configuration.set_client_secret(app["client_secret"])
    configuration.save()
    secrets = [app["client_secret"], app["pfx_password"]]

    pages = [
        _test(admin_a_client, world, configuration).content.decode(),
        admin_a_client.get(
            f"/o/{world.org_a.code}/services/office365/configuration/{configuration.code}/"
        ).content.decode(),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM o365_configuration")
        rows = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM organizations_auditevent")
        rows += repr(cursor.fetchall())
    for secret in secrets:
        assert secret not in rows
        assert secret.encode().hex() not in rows
        for page in pages:
            assert secret not in page
        assert secret not in caplog.text
    assert Configuration.objects.get().last_test_ok is True


@pytest.fixture
def silent_host():
    """An HTTPS URL on loopback whose server accepts connections and never answers (not even
    the TLS handshake); `.accepted` counts the connections it took. Stopped after the test."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()
    accepted = []

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            accepted.append(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    host = SilentHost(f"https://127.0.0.1:{server.getsockname()[1]}")
    host.accepted = accepted
    yield host
    stop.set()
    thread.join(timeout=5)
    for connection in accepted:
        connection.close()
    server.close()


class SilentHost(str):
    accepted: list


def point_at(configuration, host):
    """The configuration, moved to a custom cloud (private network allowed) on `host`."""
    from urllib.parse import urlsplit

    from o365.models import Cloud, CloudAccess

    port = urlsplit(host).port
    cloud = Cloud.objects.create(
        key=f"silent-{port}",
        name=f"Silent {port}",
        authority_host=host,
        graph_base_url=f"{host}/v1.0",
        ca_certificate_pem=configuration.cloud.ca_certificate_pem,
        private_network_allowed=True,
    )
    CloudAccess.objects.create(cloud=cloud, organization=configuration.organization)
    configuration.cloud = cloud
    configuration.save()
    return configuration


def test_a_host_that_never_answers_gets_a_clear_message_within_the_budget(
    admin_a_client, world, m365sim, silent_host, settings
):
    settings.KODO_TEST_CONNECTION_SECONDS = 2
    configuration = point_at(sim_configuration(world.org_a, m365sim), silent_host)

    started = time.monotonic()
    response = _test(admin_a_client, world, configuration)
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert "no answer within 2 seconds" in response.content.decode()
    assert elapsed < 2 + 5  # a deadline, not a timing: the client alone would wait 3 x 10 s
    assert silent_host.accepted  # it was really asked
    configuration.refresh_from_db()
    assert configuration.last_test_ok is False
