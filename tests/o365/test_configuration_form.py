import base64
import datetime as dt
import os
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from kodo import crypto
from o365.models import Service
from organizations.models import AuditEvent
from tests.o365.factories import (
    PFX_PASSWORD,
    SECRET,
    kodo_settings_json,
    make_pfx,
    make_service,
)


def _url(world, suffix="new/"):
    return f"/o/{world.org_a.code}/services/office365/configuration/{suffix}"


def _upload(name, content, kind="application/json"):
    return SimpleUploadedFile(name, content, content_type=kind)


def _fields(**values):
    base = {"name": "Contoso", "tenant_id": str(uuid.uuid4()), "client_id": str(uuid.uuid4()),
            "client_secret": SECRET, "cloud": "global"}
    base.update(values)
    return {k: v for k, v in base.items() if v is not None}


def test_it_saves_a_configuration_typed_in(admin_a_client, world):
    response = admin_a_client.post(_url(world), _fields())
    assert response.status_code == 302
    service = Service.objects.get(organization=world.org_a)
    assert service.name == "Contoso" and service.has_client_secret
    assert crypto.decrypt_text(service.client_secret_encrypted) == SECRET
    assert AuditEvent.objects.filter(action="configuration_created",
                                     organization=world.org_a).exists()


def test_it_fills_everything_from_kodo_settings_json(admin_a_client, world):
    response = admin_a_client.post(_url(world), {
        "name": "", "cloud": "global",
        "settings_file": _upload("KodoADSettings.json", kodo_settings_json()),
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    service = Service.objects.get(organization=world.org_a)
    assert service.name == "Kodo Backup"
    assert service.has_certificate and service.has_client_secret
    assert service.certificate_status() == "valid"
    assert len(service.certificate_thumbprint) == 40


def test_it_reads_custom_cloud_values_from_the_json(admin_a_client, world):
    settings_json = kodo_settings_json(Cloud="Custom", AuthorityHost="https://127.0.0.1:9443",
                                       GraphBaseUrl="https://127.0.0.1:9443/v1.0")
    admin_a_client.post(_url(world), {"cloud": "global", "settings_file":
                                      _upload("KodoADSettings.json", settings_json)})
    service = Service.objects.get(organization=world.org_a)
    assert service.cloud == "custom" and service.graph_base_url == "https://127.0.0.1:9443/v1.0"


def test_it_accepts_a_pfx_file_upload_and_pasted_base64(admin_a_client, world):
    pfx = make_pfx()
    admin_a_client.post(_url(world), _fields(
        name="By file", client_secret="", certificate_password=PFX_PASSWORD,
        certificate_file=_upload("kodo.pfx", pfx, "application/x-pkcs12")))
    admin_a_client.post(_url(world), _fields(
        name="By paste", client_secret="", certificate_password=PFX_PASSWORD,
        certificate_base64=base64.encodebytes(pfx).decode()))
    assert {s.name for s in Service.objects.all() if s.has_certificate} == {"By file", "By paste"}


@pytest.mark.parametrize(("fields", "message"), [
    ({"tenant_id": "not-a-guid"}, "Tenant ID must be a GUID"),
    ({"client_id": ""}, "Client ID must be a GUID"),
    ({"name": ""}, "Give the configuration a name"),
    ({"client_secret": ""}, "Enter the Client Secret, or give the Private Certificate"),
    ({"certificate_base64": "%%%not base64%%%"}, "not valid base64"),
    ({"certificate_base64": base64.b64encode(os.urandom(3000)).decode(),
      "certificate_password": "x"}, "does not open this PFX file"),
    ({"cloud": "custom"}, "Authority host is required for a custom cloud."),
    ({"cloud": "custom", "authority_host": "http://127.0.0.1:1",
      "graph_base_url": "https://x/v1.0"}, "must be an https:// address"),
    ({"cloud": "custom", "authority_host": "https://a", "graph_base_url": "https://b",
      "ca_certificate": "garbage"}, "must be PEM text"),
    ({"cloud": "moon"}, "Select a valid choice"),
])
def test_bad_input_gets_a_clear_message_and_saves_nothing(admin_a_client, world, fields, message):
    response = admin_a_client.post(_url(world), _fields(**fields))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Service.objects.exists()


def test_a_wrong_certificate_password_is_named(admin_a_client, world):
    response = admin_a_client.post(_url(world), _fields(
        certificate_password="wrong", certificate_file=_upload("k.pfx", make_pfx())))
    assert "The Certificate Password does not open this PFX file" in response.content.decode()


def test_a_pfx_without_a_private_key_or_with_ec_key_is_refused(admin_a_client, world):
    response = admin_a_client.post(_url(world), _fields(
        certificate_password=PFX_PASSWORD,
        certificate_file=_upload("k.pfx", make_pfx(with_key=False))))
    assert "must hold both the private key and its certificate" in response.content.decode()
    response = admin_a_client.post(_url(world), _fields(
        certificate_password=PFX_PASSWORD,
        certificate_file=_upload("k.pfx", make_pfx(key_type="ec"))))
    assert "must be RSA" in response.content.decode()


@pytest.mark.parametrize(("content", "message"), [
    (os.urandom(2000), "not a text file"),
    (b"{not json", "is not valid JSON (line 1"),
    (b"[1, 2]", "must hold one JSON object"),
    (b'{"TenantId": "x"}', "lacks ClientId"),
    (b'{"TenantId": 5, "ClientId": "y", "ClientSecret": "z"}', "TenantId must be text"),
    (b'{"TenantId": "a", "ClientId": "b"}', "neither a ClientSecret nor"),
    (b" " * (300 * 1024), "larger than 256 KB"),
])
def test_garbage_json_gets_a_message(admin_a_client, world, content, message):
    response = admin_a_client.post(_url(world), {
        "cloud": "global", "settings_file": _upload("KodoADSettings.json", content)})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Service.objects.exists()


def test_utf16_json_from_windows_powershell_is_read(admin_a_client, world):
    content = b"\xff\xfe" + kodo_settings_json().decode().encode("utf-16-le")
    response = admin_a_client.post(_url(world), {
        "cloud": "global", "settings_file": _upload("KodoADSettings.json", content)})
    assert response.status_code == 302


def test_an_expiring_certificate_is_flagged(admin_a_client, world):
    admin_a_client.post(_url(world), _fields(
        certificate_password=PFX_PASSWORD,
        certificate_file=_upload("k.pfx", make_pfx(days=10))))
    service = Service.objects.get()
    assert service.certificate_status() == "expiring"
    page = admin_a_client.get(_url(world, "")).content.decode()
    assert "Expires within 30 days" in page


def test_an_expired_certificate_is_flagged(world):
    service = make_service(world.org_a)
    service.certificate_pfx_encrypted = b"x"
    service.certificate_not_after = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    assert service.certificate_status() == "expired"


def test_names_are_unique_within_an_organization(admin_a_client, world):
    make_service(world.org_a, name="Contoso")
    make_service(world.org_b, name="Other")
    response = admin_a_client.post(_url(world), _fields(name="contoso"))
    assert "already exists" in response.content.decode()
    assert admin_a_client.post(_url(world), _fields(name="Other")).status_code == 302


def test_editing_keeps_blank_secrets_and_never_shows_them(admin_a_client, world):
    service = make_service(world.org_a)
    page = admin_a_client.get(_url(world, f"{service.code}/")).content.decode()
    assert SECRET not in page and "Leave blank to keep the stored value." in page
    response = admin_a_client.post(_url(world, f"{service.code}/"), _fields(
        name="Renamed", tenant_id=str(service.tenant_id), client_id=str(service.client_id),
        client_secret=""))
    assert response.status_code == 302
    service.refresh_from_db()
    assert service.name == "Renamed"
    assert crypto.decrypt_text(service.client_secret_encrypted) == SECRET


def test_editing_replaces_a_secret(admin_a_client, world):
    service = make_service(world.org_a)
    admin_a_client.post(_url(world, f"{service.code}/"), _fields(
        tenant_id=str(service.tenant_id), client_id=str(service.client_id),
        client_secret="a-new-secret"))
    service.refresh_from_db()
    assert crypto.decrypt_text(service.client_secret_encrypted) == "a-new-secret"
    assert AuditEvent.objects.filter(action="configuration_updated",
                                     message__contains="new client secret").exists()


def test_it_deletes_a_configuration(admin_a_client, world):
    service = make_service(world.org_a)
    assert admin_a_client.get(_url(world, f"{service.code}/delete/")).status_code == 405
    response = admin_a_client.post(_url(world, f"{service.code}/delete/"))
    assert response.status_code == 302 and not Service.objects.exists()
    assert AuditEvent.objects.filter(action="configuration_deleted").exists()


def test_a_huge_upload_is_refused_before_the_view(admin_a_client, world):
    response = admin_a_client.post(_url(world), {
        "cloud": "global", "settings_file": _upload("big.json", b"0" * (6 * 1024 * 1024))})
    assert response.status_code == 413
    assert b"too large" in response.content
