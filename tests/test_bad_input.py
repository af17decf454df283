"""Bad input gets a form error, never a 500 (issue 10, item 7); names are one line (item 4)."""

import json
import uuid

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile

from o365.models import Configuration
from organizations.models import Organization
from schedules.models import Schedule
from tests.factories import SECRET, kodo_settings_json, make_configuration, mirror


def _configuration_url(world):
    return f"/o/{world.org_a.code}/services/office365/configuration/new/"


def _post_settings_file(client, world, content: bytes):
    return client.post(
        _configuration_url(world),
        {
            "name": "",
            "cloud": "global",
            "settings_file": SimpleUploadedFile(
                "KodoADSettings.json", content, content_type="application/json"
            ),
        },
    )


def _form_error(response) -> str:
    assert response.status_code == 200, response.status_code
    errors = response.context["form"].errors
    assert errors, "the form was accepted"
    return " ".join(message for messages in errors.values() for message in messages)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
        (b'{"TenantId": ' + b"9" * 5000 + b"}", "number too long"),
        (b'{"TenantId": "\\ud800", "ClientId": "\\ud800", "ClientSecret": "x"}', "must be a GUID"),
        (b"\xff\xfe\x00\xd8", "not a text file"),
    ],
)
def test_an_unreadable_settings_file_is_a_form_error(admin_a_client, world, content, message):
    assert message in _form_error(_post_settings_file(admin_a_client, world, content))
    assert not Configuration.objects.exists()


@pytest.mark.parametrize(
    "values, message",
    [
        ({"AppName": "\ud800"}, "U+D800"),
        ({"AppName": "x" * 5000}, "at most 200"),
        ({"AppName": "Kodo\x00Backup"}, "NUL"),
        ({"AppName": "Kodo\nBackup"}, "one line"),
        ({"ClientSecret": "s" * 10_000}, "at most 500"),
        ({"CertificatePassword": "p\x00"}, "NUL"),
        ({"TenantId": 5}, "must be text"),
        ({"AppName": ["Kodo"]}, "must be text"),
        ({"ClientSecret": {"a": 1}}, "must be text"),
        ({"TenantId": "x" * 100_000}, "must be a GUID"),
        ({"CertificatePfxBase64": "MII%%%"}, "not base64"),
        ({"CaCertificatePem": "-----BEGIN\x00"}, "NUL"),
        (
            {
                "Cloud": "Custom",
                "AuthorityHost": "https://user:password@127.0.0.1:9443",
                "GraphBaseUrl": "https://127.0.0.1:9443/v1.0",
            },
            "user:password",
        ),
        (
            {
                "Cloud": "Custom",
                "AuthorityHost": "https://127.0.0.1:9443/tenant/path",
                "GraphBaseUrl": "https://127.0.0.1:9443/v1.0",
            },
            "without a path",
        ),
        (
            {
                "Cloud": "Custom",
                "AuthorityHost": "https://[::1",
                "GraphBaseUrl": "https://127.0.0.1:9443/v1.0",
            },
            "not a valid address",
        ),
        (
            {
                "Cloud": "Custom",
                "AuthorityHost": "https://127.0.0.1:99999",
                "GraphBaseUrl": "https://127.0.0.1:9443/v1.0",
            },
            "not a valid address",
        ),
    ],
)
def test_values_from_the_settings_file_get_the_checks_of_typed_values(
    admin_a_client, world, values, message
):
    response = _post_settings_file(admin_a_client, world, kodo_settings_json(**values))
    assert message in _form_error(response)
    assert not Configuration.objects.exists()


def _typed(**values):
    base = {
        "name": "Contoso",
        "tenant_id": str(uuid.uuid4()),
        "client_id": str(uuid.uuid4()),
        "client_secret": SECRET,
    }
    return {**base, **values}


@pytest.mark.parametrize("name", ["Contoso\nBcc: x@example.com", "Contoso\x1b[31m", "a\u2029b"])
def test_a_configuration_name_that_is_not_one_line_is_a_form_error(admin_a_client, world, name):
    response = admin_a_client.post(_configuration_url(world), _typed(name=name))
    assert response.status_code == 200
    assert "one line" in " ".join(response.context["form"].errors["name"])
    assert not Configuration.objects.exists()


def _cloud(**values):
    return {
        "name": "Lab",
        "authority_host": "https://127.0.0.1:9443",
        "graph_base_url": "https://127.0.0.1:9443/v1.0",
        **values,
    }


@pytest.mark.parametrize(
    "values, field",
    [
        ({"authority_host": "https://[::1"}, "authority_host"),
        ({"graph_base_url": "https://[::1"}, "graph_base_url"),
        ({"graph_base_url": "https://a:b@127.0.0.1:9443/v1.0"}, "graph_base_url"),
        ({"authority_host": "https://127.0.0.1:9443/path"}, "authority_host"),
        ({"authority_host": "https://127.0.0.1:99999"}, "authority_host"),
        ({"graph_base_url": "https://127.0.0.1/v1.0\x00"}, "graph_base_url"),
        ({"name": "Lab\nBcc: x@example.com"}, "name"),
    ],
)
def test_a_typed_cloud_address_that_is_no_url_or_a_multiline_name_is_a_form_error(
    server_admin_client, world, values, field
):
    response = server_admin_client.post("/server/clouds/new/", _cloud(**values))
    assert response.status_code == 200
    assert field in response.context["form"].errors


def _wizard_save(client, world, **values):
    data = {
        "name": "Nightly",
        "scope": "all",
        "frequency": "daily",
        "time": "22:00",
        "every_hours": 6,
        "start_date": "2026-01-01",
        "time_zone": "UTC",
        "keep_versions": 30,
        "keep_deleted_for": 1,
        "keep_deleted_unit": "years",
        "notify": "failure",
        "step": 4,
        "action": "save",
        **values,
    }
    return client.post(f"/o/{world.org_a.code}/schedules/new/", data)


@pytest.mark.parametrize(
    "values, field",
    [
        ({"scope": "chosen", "users": "999999999999999"}, "users"),
        ({"scope": "chosen", "users": str(10**20)}, "users"),
        ({"scope": "chosen", "users": ["-" + "9" * 30]}, "users"),
        ({"scope": "chosen", "users": "9" * 5000}, "users"),
        ({"scope": "chosen", "users": "1e3"}, "users"),
        ({"configuration": str(10**20)}, "configuration"),
        ({"configuration": "9" * 5000}, "configuration"),
        ({"name": "Night\nly"}, "name"),
        ({"name": "Night\u2028ly"}, "name"),
    ],
)
def test_a_schedule_with_out_of_range_ids_or_a_multiline_name_is_a_form_error(
    admin_a_client, world, values, field
):
    configuration = make_configuration(world.org_a)
    mirror(configuration, 1)
    response = _wizard_save(admin_a_client, world, **{"configuration": configuration.pk, **values})
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Schedule.objects.exists()


def test_a_schedule_with_real_ids_is_saved(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    [user] = mirror(configuration, 1)
    response = _wizard_save(
        admin_a_client, world, configuration=configuration.pk, scope="chosen", users=[user.pk]
    )
    assert response.status_code == 302
    assert list(Schedule.objects.get().users.all()) == [user]


def _new_organization(client, **values):
    data = {
        "name": "Gamma College",
        "time_zone": "UTC",
        "admin_name": "Gina Gamma",
        "admin_email": "gina@gamma.example",
        **values,
    }
    return client.post("/server/organizations/new/", data)


@pytest.mark.parametrize(
    "values, field",
    [
        ({"name": "Gamma\nCollege"}, "name"),
        ({"name": "Gamma\x00College"}, "name"),
        ({"admin_name": "Gina\r\nGamma"}, "admin_name"),
    ],
)
def test_an_organization_name_with_a_newline_is_refused_at_creation(
    server_admin_client, world, values, field
):
    response = _new_organization(server_admin_client, **values)
    assert response.status_code == 200
    assert "one line" in " ".join(response.context["form"].errors[field])
    assert not Organization.objects.filter(name__startswith="Gamma").exists()


@pytest.fixture
def mail_server_down(monkeypatch):
    from django.core.mail.backends.locmem import EmailBackend

    def refuse(self, messages):
        raise ConnectionRefusedError("the mail server refused the connection")

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)


def test_the_invitation_link_is_shown_when_its_email_cannot_be_sent(
    server_admin_client, world, mail_server_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _new_organization(server_admin_client)
    assert response.status_code == 302
    page = server_admin_client.get(response["Location"]).content.decode()
    assert "/accounts/reset/" in page


def test_a_new_invitation_for_an_organization_saved_with_a_newline_is_sent(
    server_admin_client, world
):
    Organization.objects.filter(pk=world.org_b.pk).update(name="Beta\nMSP")
    response = server_admin_client.post(
        f"/server/organizations/{world.org_b.code}/admins/{world.admin_b.pk}/invite/"
    )
    assert response.status_code == 302
    [email] = mail.outbox
    assert email.subject == "Your Kodo account for Beta MSP"


def test_the_settings_file_still_fills_the_form(admin_a_client, world):
    response = _post_settings_file(
        admin_a_client,
        world,
        kodo_settings_json(
            Cloud="Custom",
            AuthorityHost="https://127.0.0.1:9443/",
            GraphBaseUrl="https://127.0.0.1:9443/v1.0",
            CaCertificatePem="-----BEGIN\n...",
        ),
    )
    assert response.status_code == 302, json.dumps(response.context["form"].errors)
    assert Configuration.objects.get().name == "Kodo Backup"


@pytest.mark.parametrize("graph_id", ["\ud800", "a\x00b", "x" * 65, "é"])
def test_a_graph_id_no_directory_holds_is_a_form_error_for_import_users(world, graph_id):
    from o365.forms import ImportUsersForm

    configuration = make_configuration(world.org_a)
    form = ImportUsersForm({"graph_ids": [graph_id]}, configuration=configuration)
    assert not form.is_valid() and "graph_ids" in form.errors
