"""With DEBUG on, a 500 on a page that handles a configuration's secrets shows none of them."""

import base64
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import PFX_PASSWORD, SECRET, kodo_settings_json, make_configuration, make_pfx


@pytest.fixture
def debug_client(admin_a_client, settings):
    settings.DEBUG = True
    admin_a_client.raise_request_exception = False
    return admin_a_client


def _crash(*args, **kwargs):
    raise RuntimeError("a bug deep in the form")


def _debug_page(response) -> str:
    page = response.content.decode()
    assert response.status_code == 500
    assert "RuntimeError" in page and "Local vars" in page  # Django's technical 500 page
    return page


def _configuration_url(world, suffix="new/"):
    return f"/o/{world.org_a.code}/services/office365/configuration/{suffix}"


def test_a_crash_in_the_typed_configuration_form_hides_the_secret(debug_client, world, monkeypatch):
    monkeypatch.setattr("o365.forms.parse_guid", _crash)
    response = debug_client.post(
        _configuration_url(world),
        {
            "name": "Contoso",
            "tenant_id": str(uuid.uuid4()),
            "client_id": str(uuid.uuid4()),
            "client_secret": SECRET,
            "cloud": "global",
        },
    )
    assert SECRET not in _debug_page(response)


def test_a_crash_while_opening_the_certificate_hides_its_password_and_key(
    debug_client, world, monkeypatch
):
    monkeypatch.setattr("o365.forms.load_certificate", _crash)
    pfx_base64 = base64.b64encode(make_pfx()).decode()
    configuration = make_configuration(world.org_a)
    response = debug_client.post(
        _configuration_url(world, f"{configuration.code}/"),
        {
            "name": "Contoso",
            "tenant_id": str(configuration.tenant_id),
            "client_id": str(configuration.client_id),
            "cloud": "global",
            "certificate_password": PFX_PASSWORD,
            "certificate_base64": pfx_base64,
        },
    )
    page = _debug_page(response)
    assert PFX_PASSWORD not in page and pfx_base64[:40] not in page


def test_a_crash_reading_kodo_settings_json_hides_its_secrets(debug_client, world, monkeypatch):
    monkeypatch.setattr("o365.forms.load_certificate", _crash)
    upload = SimpleUploadedFile(
        "KodoADSettings.json", kodo_settings_json(), content_type="application/json"
    )
    response = debug_client.post(
        _configuration_url(world), {"settings_file": upload, "cloud": "global"}
    )
    page = _debug_page(response)
    assert SECRET not in page and PFX_PASSWORD not in page


def test_a_crash_in_test_connection_hides_the_stored_secret(debug_client, world, monkeypatch):
    monkeypatch.setattr("o365.connection.Credentials", _crash)
    configuration = make_configuration(world.org_a)
    response = debug_client.post(_configuration_url(world, f"{configuration.code}/test/"))
    assert SECRET not in _debug_page(response)
