import base64
import datetime as dt
import os
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.text import slugify

from kodo import crypto
from o365.models import Configuration
from organizations.models import AuditEvent
from tests.factories import (
    PFX_PASSWORD,
    SECRET,
    kodo_settings_json,
    make_configuration,
    make_pfx,
)


def _url(world, suffix="new/"):
    return f"/o/{world.org_a.code}/services/office365/configuration/{suffix}"


def _upload(name, content, kind="application/json"):
    return SimpleUploadedFile(name, content, content_type=kind)


def _fields(**values):
    base = {
        "name": "Contoso",
        "tenant_id": str(uuid.uuid4()),
        "client_id": str(uuid.uuid4()),
        "client_secret": SECRET,
        "cloud": "global",
    }
    base.update(values)
    return {k: v for k, v in base.items() if v is not None}


def test_it_saves_a_configuration_typed_in(admin_a_client, world):
    response = admin_a_client.post(_url(world), _fields())
    assert response.status_code == 302
    configuration = Configuration.objects.get(organization=world.org_a)
    assert configuration.name == "Contoso" and configuration.has_client_secret
    assert crypto.decrypt_text(configuration.client_secret_encrypted) == SECRET
    assert AuditEvent.objects.filter(
        action="configuration_created", organization=world.org_a
    ).exists()


def test_it_fills_everything_from_kodo_settings_json(admin_a_client, world):
    response = admin_a_client.post(
        _url(world),
        {
            "name": "",
            "cloud": "global",
            "settings_file": _upload("KodoADSettings.json", kodo_settings_json()),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    configuration = Configuration.objects.get(organization=world.org_a)
    assert configuration.name == "Kodo Backup"
    assert configuration.has_certificate and configuration.has_client_secret
    assert configuration.certificate_status() == "valid"
    assert len(configuration.certificate_thumbprint) == 40


def test_the_m365sim_keys_of_the_json_are_read_but_define_no_endpoints(admin_a_client, world):
    settings_json = kodo_settings_json(
        Cloud="Custom",
        AuthorityHost="https://127.0.0.1:9443",
        GraphBaseUrl="https://127.0.0.1:9443/v1.0",
        CaCertificatePem=None,
    )
    response = admin_a_client.post(
        _url(world),
        {"cloud": "global", "settings_file": _upload("KodoADSettings.json", settings_json)},
    )
    assert response.status_code == 302
    configuration = Configuration.objects.get(organization=world.org_a)
    assert configuration.cloud.key == "global"
    assert configuration.cloud.endpoints().authority_host == "https://login.microsoftonline.com"


def test_it_accepts_a_pfx_file_upload_and_pasted_base64(admin_a_client, world):
    pfx = make_pfx()
    admin_a_client.post(
        _url(world),
        _fields(
            name="By file",
            client_secret="",
            certificate_password=PFX_PASSWORD,
            certificate_file=_upload("kodo.pfx", pfx, "application/x-pkcs12"),
        ),
    )
    admin_a_client.post(
        _url(world),
        _fields(
            name="By paste",
            client_secret="",
            certificate_password=PFX_PASSWORD,
            certificate_base64=base64.encodebytes(pfx).decode(),
        ),
    )
    assert {s.name for s in Configuration.objects.all() if s.has_certificate} == {
        "By file",
        "By paste",
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tenant_id": "not-a-guid"}, "Tenant ID must be a GUID"),
        ({"client_id": ""}, "Client ID must be a GUID"),
        ({"name": ""}, "Give the configuration a name"),
        ({"client_secret": ""}, "Enter the Client Secret, or give the Private Certificate"),
        ({"certificate_base64": "%%%not base64%%%"}, "not valid base64"),
        (
            {
                "certificate_base64": base64.b64encode(os.urandom(3000)).decode(),
                "certificate_password": "x",
            },
            "does not open this PFX file",
        ),
        ({"cloud": "custom"}, "Select a valid choice"),
        ({"cloud": "moon"}, "Select a valid choice"),
    ],
)
def test_bad_input_gets_a_clear_message_and_saves_nothing(admin_a_client, world, fields, message):
    response = admin_a_client.post(_url(world), _fields(**fields))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Configuration.objects.exists()


def test_a_wrong_certificate_password_is_named(admin_a_client, world):
    response = admin_a_client.post(
        _url(world),
        _fields(certificate_password="wrong", certificate_file=_upload("k.pfx", make_pfx())),
    )
    assert "The Certificate Password does not open this PFX file" in response.content.decode()


def test_a_pfx_without_a_private_key_or_with_ec_key_is_refused(admin_a_client, world):
    response = admin_a_client.post(
        _url(world),
        _fields(
            certificate_password=PFX_PASSWORD,
            certificate_file=_upload("k.pfx", make_pfx(with_key=False)),
        ),
    )
    assert "must hold both the private key and its certificate" in response.content.decode()
    response = admin_a_client.post(
        _url(world),
        _fields(
            certificate_password=PFX_PASSWORD,
            certificate_file=_upload("k.pfx", make_pfx(key_type="ec")),
        ),
    )
    assert "must be RSA" in response.content.decode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (os.urandom(2000), "not a text file"),
        (b"{not json", "is not valid JSON (line 1"),
        (b"[1, 2]", "must hold one JSON object"),
        (b'{"TenantId": "x"}', "lacks ClientId"),
        (b'{"TenantId": 5, "ClientId": "y", "ClientSecret": "z"}', "TenantId must be text"),
        (b'{"TenantId": "a", "ClientId": "b"}', "neither a ClientSecret nor"),
        (b" " * (300 * 1024), "larger than 256 KB"),
    ],
)
def test_garbage_json_gets_a_message(admin_a_client, world, content, message):
    response = admin_a_client.post(
        _url(world), {"cloud": "global", "settings_file": _upload("KodoADSettings.json", content)}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Configuration.objects.exists()


def test_utf16_json_from_windows_powershell_is_read(admin_a_client, world):
    content = b"\xff\xfe" + kodo_settings_json().decode().encode("utf-16-le")
    response = admin_a_client.post(
        _url(world), {"cloud": "global", "settings_file": _upload("KodoADSettings.json", content)}
    )
    assert response.status_code == 302


def test_an_expiring_certificate_is_flagged(admin_a_client, world):
    admin_a_client.post(
        _url(world),
        _fields(
            certificate_password=PFX_PASSWORD, certificate_file=_upload("k.pfx", make_pfx(days=10))
        ),
    )
    configuration = Configuration.objects.get()
    assert configuration.certificate_status() == "expiring"
    page = admin_a_client.get(_url(world, "")).content.decode()
    assert "Expires within 30 days" in page


def test_an_expired_certificate_is_flagged(world):
    configuration = make_configuration(world.org_a)
    configuration.certificate_pfx_encrypted = b"x"
    configuration.certificate_not_after = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    assert configuration.certificate_status() == "expired"


def test_names_are_unique_within_an_organization(admin_a_client, world):
    make_configuration(world.org_a, name="Contoso")
    make_configuration(world.org_b, name="Other")
    response = admin_a_client.post(_url(world), _fields(name="contoso"))
    assert "already exists" in response.content.decode()
    assert admin_a_client.post(_url(world), _fields(name="Other")).status_code == 302


def test_editing_keeps_blank_secrets_and_never_shows_them(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    page = admin_a_client.get(_url(world, f"{configuration.code}/")).content.decode()
    assert SECRET not in page and "Leave blank to keep the stored value." in page
    response = admin_a_client.post(
        _url(world, f"{configuration.code}/"),
        _fields(
            name="Renamed",
            tenant_id=str(configuration.tenant_id),
            client_id=str(configuration.client_id),
            client_secret="",
        ),
    )
    assert response.status_code == 302
    configuration.refresh_from_db()
    assert configuration.name == "Renamed"
    assert crypto.decrypt_text(configuration.client_secret_encrypted) == SECRET


def test_editing_replaces_a_secret(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    admin_a_client.post(
        _url(world, f"{configuration.code}/"),
        _fields(
            tenant_id=str(configuration.tenant_id),
            client_id=str(configuration.client_id),
            client_secret="a-new-secret",
        ),
    )
    configuration.refresh_from_db()
    assert crypto.decrypt_text(configuration.client_secret_encrypted) == "a-new-secret"
    assert AuditEvent.objects.filter(
        action="configuration_updated", message__contains="new client secret"
    ).exists()


def test_it_deletes_a_configuration(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    assert admin_a_client.get(_url(world, f"{configuration.code}/delete/")).status_code == 405
    response = admin_a_client.post(_url(world, f"{configuration.code}/delete/"))
    assert response.status_code == 302 and not Configuration.objects.exists()
    assert AuditEvent.objects.filter(action="configuration_deleted").exists()


def test_a_huge_upload_is_refused_before_the_view(admin_a_client, world):
    response = admin_a_client.post(
        _url(world),
        {"cloud": "global", "settings_file": _upload("big.json", b"0" * (6 * 1024 * 1024))},
    )
    assert response.status_code == 413
    assert b"too large" in response.content


# ----- clouds: only those the server administrator enabled ---------------------------------


def _custom_cloud(name="Sovereign", *organizations, default=False, **fields):
    from o365.models import Cloud, CloudAccess

    key = slugify(name)
    cloud = Cloud.objects.create(
        key=key,
        name=name,
        authority_host=f"https://login.{key}.example",
        graph_base_url=f"https://graph.{key}.example/v1.0",
        **fields,
    )
    for organization in organizations:
        CloudAccess.objects.create(cloud=cloud, organization=organization, is_default=default)
    return cloud


def test_an_org_admin_cannot_choose_a_cloud_not_enabled_for_the_organization(admin_a_client, world):
    _custom_cloud("Beta only", world.org_b)
    page = admin_a_client.get(_url(world)).content.decode()
    assert "Beta only" not in page and "US Government" in page

    response = admin_a_client.post(_url(world), _fields(cloud="beta-only"))

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Configuration.objects.exists()


def test_a_custom_cloud_enabled_for_the_organization_can_be_chosen(admin_a_client, world):
    cloud = _custom_cloud("Alpha cloud", world.org_a)
    assert admin_a_client.post(_url(world), _fields(cloud=cloud.key)).status_code == 302
    assert Configuration.objects.get().cloud == cloud


def test_forged_endpoint_fields_are_ignored(admin_a_client, world):
    response = admin_a_client.post(
        _url(world),
        _fields(
            cloud="global",
            authority_host="https://169.254.169.254",
            graph_base_url="https://169.254.169.254/v1.0",
            ca_certificate="-----BEGIN CERTIFICATE-----",
        ),
    )

    assert response.status_code == 302
    endpoints = Configuration.objects.get().cloud.endpoints()
    assert endpoints.authority_host == "https://login.microsoftonline.com"
    assert endpoints.graph_base == "https://graph.microsoft.com/v1.0" and endpoints.ca_pem is None


def test_the_form_preselects_the_organizations_default_cloud(admin_a_client, world):
    _custom_cloud("Alpha cloud", world.org_a, default=True)
    page = admin_a_client.get(_url(world)).content.decode()
    assert '<option value="alpha-cloud" selected>' in page

    fields = _fields()
    del fields["cloud"]
    assert admin_a_client.post(_url(world), fields).status_code == 302
    assert Configuration.objects.get().cloud.key == "alpha-cloud"


def test_the_json_names_a_custom_cloud_by_its_name(admin_a_client, world):
    _custom_cloud("Alpha cloud", world.org_a)
    response = admin_a_client.post(
        _url(world),
        {
            "cloud": "global",
            "settings_file": _upload(
                "KodoADSettings.json", kodo_settings_json(Cloud="alpha cloud")
            ),
        },
    )
    assert response.status_code == 302
    assert Configuration.objects.get().cloud.name == "Alpha cloud"


def test_the_json_cannot_name_a_cloud_not_enabled_for_the_organization(admin_a_client, world):
    _custom_cloud("Beta only", world.org_b)
    response = admin_a_client.post(
        _url(world),
        {
            "cloud": "global",
            "settings_file": _upload("KodoADSettings.json", kodo_settings_json(Cloud="Beta only")),
        },
    )
    assert "not enabled for your organization" in response.content.decode()
    assert not Configuration.objects.exists()


# ----- a stored secret never follows a changed cloud, tenant or app ------------------------


def _with_certificate(configuration):
    from o365.validators import load_certificate

    configuration.set_certificate(load_certificate(make_pfx(), PFX_PASSWORD), PFX_PASSWORD)
    configuration.save()
    return configuration


@pytest.mark.parametrize("change", ["tenant_id", "client_id", "cloud"])
def test_changing_the_cloud_tenant_or_app_requires_the_secret_again(admin_a_client, world, change):
    _custom_cloud("Alpha cloud", world.org_a)
    configuration = _with_certificate(make_configuration(world.org_a))
    values = {
        "tenant_id": str(configuration.tenant_id),
        "client_id": str(configuration.client_id),
        "cloud": "global",
        "client_secret": "",
    }
    values[change] = "alpha-cloud" if change == "cloud" else str(uuid.uuid4())

    response = admin_a_client.post(_url(world, f"{configuration.code}/"), _fields(**values))

    assert response.status_code == 200
    assert "enter the Client Secret (or give the Private Certificate" in response.content.decode()
    configuration.refresh_from_db()
    assert configuration.cloud.key == "global" and configuration.has_client_secret


def test_changing_the_tenant_id_keeps_no_stored_secret_or_certificate(admin_a_client, world):
    configuration = _with_certificate(make_configuration(world.org_a))
    new_tenant = uuid.uuid4()

    response = admin_a_client.post(
        _url(world, f"{configuration.code}/"),
        _fields(
            tenant_id=str(new_tenant),
            client_id=str(configuration.client_id),
            client_secret="new-secret",
        ),
    )

    assert response.status_code == 302
    configuration.refresh_from_db()
    assert configuration.tenant_id == new_tenant
    assert crypto.decrypt_text(configuration.client_secret_encrypted) == "new-secret"
    assert not configuration.has_certificate and configuration.certificate_password_encrypted == b""


def test_a_new_certificate_password_alone_does_not_carry_the_stored_pfx_to_another_tenant(
    admin_a_client, world
):
    configuration = _with_certificate(make_configuration(world.org_a))
    response = admin_a_client.post(
        _url(world, f"{configuration.code}/"),
        _fields(
            tenant_id=str(uuid.uuid4()),
            client_id=str(configuration.client_id),
            client_secret="",
            certificate_password=PFX_PASSWORD,
        ),
    )
    assert response.status_code == 200
    configuration.refresh_from_db()
    assert configuration.has_certificate  # nothing saved
