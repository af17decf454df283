import logging

import pytest

from o365.models import Service
from organizations.models import AuditEvent
from tests.o365.factories import sim_service


def _test(client, world, service):
    url = f"/o/{world.org_a.code}/services/office365/configuration/{service.code}/test/"
    return client.post(url, follow=True)


@pytest.mark.parametrize("certificate", [False, True])
def test_test_connection_succeeds_against_m365sim(admin_a_client, world, m365sim, certificate):
    service = sim_service(world.org_a, m365sim, certificate=certificate)
    page = _test(admin_a_client, world, service).content.decode()
    assert "Connection OK" in page
    service.refresh_from_db()
    assert service.last_test_ok is True and service.last_test_at is not None
    assert "Files.Read.All" in service.last_test_roles
    assert AuditEvent.objects.filter(action="configuration_tested",
                                     message__endswith="success.").exists()


def test_test_connection_names_a_missing_permission(admin_a_client, world, m365sim):
    service = sim_service(world.org_a, m365sim, app_name="Kodo Backup (no files)")
    page = _test(admin_a_client, world, service).content.decode()
    assert "lacks these permissions: Files.Read.All" in page
    assert "Grant admin consent" in page
    service.refresh_from_db()
    assert service.last_test_ok is False and service.last_test_missing == ["Files.Read.All"]


def test_a_wrong_secret_is_reported_without_showing_it(admin_a_client, world, m365sim):
    service = sim_service(world.org_a, m365sim)
    service.set_client_secret("wrong-secret-value-123")
    service.save()
    page = _test(admin_a_client, world, service).content.decode()
    assert "could not sign in" in page and "AADSTS7000215" in page
    assert "wrong-secret-value-123" not in page


def test_secrets_never_reach_the_database_pages_or_logs(admin_a_client, world, m365sim, caplog):
    from django.db import connection

    caplog.set_level(logging.DEBUG)
    tenant = m365sim.info["tenants"][0]
    app = tenant["apps"][0]
    service = sim_service(world.org_a, m365sim, certificate=True)
    service.set_client_secret(app["client_secret"])
    service.save()
    secrets = [app["client_secret"], app["pfx_password"]]

    pages = [_test(admin_a_client, world, service).content.decode(),
             admin_a_client.get(
                 f"/o/{world.org_a.code}/services/office365/configuration/{service.code}/"
             ).content.decode()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM o365_service")
        rows = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM organizations_auditevent")
        rows += repr(cursor.fetchall())
    for secret in secrets:
        assert secret not in rows
        assert secret.encode().hex() not in rows
        for page in pages:
            assert secret not in page
        assert secret not in caplog.text
    assert Service.objects.get().last_test_ok is True
