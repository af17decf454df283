"""The configuration form helps (issue 14 §3): a failed SAVE keeps what was typed but never the
secrets (those fields come back empty, saying "enter it again"), each error sits under the field
it concerns, a second configuration of the same tenant and app is refused, and the page loads the
script that reads KodoADSettings.json in the browser (tests/e2e/test_configuration_form.py
drives it)."""

import base64
import re
import uuid

from django.core.files.uploadedfile import SimpleUploadedFile

from o365 import clouds
from o365.forms import ConfigurationForm
from o365.models import Cloud, CloudAccess, Configuration
from tests.factories import PFX_PASSWORD, SECRET, kodo_settings_json, make_configuration, make_pfx


def _url(world, suffix="new/"):
    return f"/o/{world.org_a.code}/services/office365/configuration/{suffix}"


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


def field_blocks(page: str) -> dict[str, str]:
    """The HTML of each form field's block (label, input, help, errors), by field name."""
    blocks = {}
    for chunk in re.split(r'(?=<div class="field)|(?=<div class="actions")', page):
        if chunk.startswith('<div class="field'):
            name = re.search(r'name="([a-z0-9_]+)"', chunk)
            if name:
                blocks[name.group(1)] = chunk
    return blocks


def errors_of(block: str) -> list[str]:
    return re.findall(r'<p class="error">(.*?)</p>', block)


def value_of(block: str) -> str | None:
    found = re.search(r'value="([^"]*)"', block)
    return found.group(1) if found else None


# ----- a failed SAVE keeps what was typed, never the secrets --------------------------------


def test_a_failed_save_keeps_the_typed_values_and_asks_for_the_secrets_again(admin_a_client, world):
    tenant_id, client_id = str(uuid.uuid4()), str(uuid.uuid4())
    pfx_base64 = base64.b64encode(make_pfx()).decode()
    response = admin_a_client.post(
        _url(world),
        _fields(
            name="",  # the one mistake
            tenant_id=tenant_id,
            client_id=client_id,
            certificate_password=PFX_PASSWORD,
            certificate_base64=pfx_base64,
        ),
    )

    assert response.status_code == 200 and not Configuration.objects.exists()
    page = response.content.decode()
    blocks = field_blocks(page)
    assert value_of(blocks["tenant_id"]) == tenant_id
    assert value_of(blocks["client_id"]) == client_id
    assert 'value="global" selected' in blocks["cloud"]
    for secret in (SECRET, PFX_PASSWORD, pfx_base64[:40]):
        assert secret not in page
    for field in ("client_secret", "certificate_password", "certificate_base64"):
        assert errors_of(blocks[field]) == [
            "Enter it again: Kodo never sends a secret back to the browser."
        ]
    assert errors_of(blocks["name"]) == ["Give the configuration a name (any)."]
    assert "Not saved: see the messages under the fields below." in page


def test_a_chosen_file_is_asked_for_again_after_a_failed_save(admin_a_client, world):
    make_configuration(world.org_a, name="Kodo Backup")
    response = admin_a_client.post(
        _url(world),
        {
            "cloud": "global",
            "settings_file": SimpleUploadedFile("KodoADSettings.json", kodo_settings_json()),
        },
    )

    blocks = field_blocks(response.content.decode())
    assert errors_of(blocks["name"]) == ["A configuration with this name already exists."]
    assert "Choose the file again" in errors_of(blocks["settings_file"])[0]
    assert SECRET not in response.content.decode()


def test_a_successful_save_asks_for_nothing_again(admin_a_client, world):
    response = admin_a_client.post(_url(world), _fields())
    assert response.status_code == 302 and Configuration.objects.count() == 1


# ----- errors under the field they concern --------------------------------------------------


def test_each_error_sits_under_its_field(admin_a_client, world):
    response = admin_a_client.post(
        _url(world),
        _fields(
            tenant_id="not-a-guid",
            client_secret="",
            certificate_password="wrong password",
            certificate_file=SimpleUploadedFile("k.pfx", make_pfx()),
        ),
    )

    blocks = field_blocks(response.content.decode())
    assert "Tenant ID must be a GUID" in errors_of(blocks["tenant_id"])[0]
    assert "does not open this PFX file" in errors_of(blocks["certificate_password"])[0]
    assert errors_of(blocks["client_id"]) == []
    form = response.content.decode().split('<form method="post" enctype')[1]
    assert 'class="errors"' not in form.split('<div class="field')[0]  # none above the fields


def test_a_bad_pasted_certificate_is_named_under_the_paste(admin_a_client, world):
    response = admin_a_client.post(
        _url(world), _fields(client_secret="", certificate_base64="%%% not base64 %%%")
    )
    blocks = field_blocks(response.content.decode())
    assert "not valid base64" in errors_of(blocks["certificate_base64"])[0]


# ----- one configuration per tenant and app -------------------------------------------------


def test_a_second_configuration_of_the_same_tenant_and_app_is_refused(admin_a_client, world):
    existing = make_configuration(world.org_a, name="Contoso main")
    response = admin_a_client.post(
        _url(world),
        _fields(
            name="Contoso again",
            tenant_id=str(existing.tenant_id).upper(),
            client_id=str(existing.client_id),
        ),
    )

    assert response.status_code == 200
    assert Configuration.objects.count() == 1
    errors = errors_of(field_blocks(response.content.decode())["client_id"])
    assert errors == [
        "The configuration &quot;Contoso main&quot; already uses this tenant and app (the same "
        "cloud, Tenant ID and Client ID): a second one would back the same users up twice. "
        "Edit &quot;Contoso main&quot; instead."
    ]


def test_the_same_ids_from_kodo_settings_json_are_refused_too(admin_a_client, world):
    existing = make_configuration(world.org_a, name="Contoso main")
    settings_file = kodo_settings_json(
        TenantId=str(existing.tenant_id), ClientId=str(existing.client_id)
    )
    response = admin_a_client.post(
        _url(world),
        {"cloud": "global", "settings_file": SimpleUploadedFile("K.json", settings_file)},
    )
    assert "already uses this tenant and app" in response.content.decode()
    assert Configuration.objects.count() == 1


def test_editing_a_configuration_keeps_its_own_ids(admin_a_client, world):
    existing = make_configuration(world.org_a, name="Contoso main")
    response = admin_a_client.post(
        _url(world, f"{existing.code}/"),
        _fields(
            name="Contoso renamed",
            tenant_id=str(existing.tenant_id),
            client_id=str(existing.client_id),
        ),
    )
    assert response.status_code == 302
    existing.refresh_from_db()
    assert existing.name == "Contoso renamed"


def test_editing_into_another_configurations_ids_is_refused(admin_a_client, world):
    first = make_configuration(world.org_a, name="First")
    second = make_configuration(world.org_a, name="Second")
    response = admin_a_client.post(
        _url(world, f"{second.code}/"),
        _fields(name="Second", tenant_id=str(first.tenant_id), client_id=str(first.client_id)),
    )
    assert "The configuration &quot;First&quot; already uses" in response.content.decode()
    second.refresh_from_db()
    assert second.tenant_id != first.tenant_id


def test_another_cloud_or_another_organization_may_use_the_same_ids(world):
    existing = make_configuration(world.org_a, name="Contoso main")
    sovereign = Cloud.objects.create(
        key="sovereign",
        name="Sovereign",
        authority_host="https://login.sovereign.example",
        graph_base_url="https://graph.sovereign.example/v1.0",
    )
    CloudAccess.objects.create(cloud=sovereign, organization=world.org_a)
    same_ids = {"tenant_id": str(existing.tenant_id), "client_id": str(existing.client_id)}

    other_cloud = ConfigurationForm(
        _fields(name="On Sovereign", cloud="sovereign", **same_ids), organization=world.org_a
    )
    other_organization = ConfigurationForm(
        _fields(name="Contoso main", **same_ids), organization=world.org_b
    )
    same = ConfigurationForm(_fields(name="Again", **same_ids), organization=world.org_a)

    assert other_cloud.is_valid(), other_cloud.errors
    assert other_organization.is_valid(), other_organization.errors
    assert not same.is_valid()
    assert "already uses this tenant and app" in same.errors["client_id"][0]
    assert existing.cloud.key == clouds.GLOBAL


# ----- the page reads KodoADSettings.json in the browser ------------------------------------


def test_the_form_page_loads_its_script_and_no_inline_code(admin_a_client, world):
    response = admin_a_client.get(_url(world))
    page = response.content.decode()

    assert '<script src="/static/js/configuration.js" defer></script>' in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)  # CSP: 'self' only
    assert "script-src 'self'" in response["Content-Security-Policy"]
    blocks = field_blocks(page)
    assert "data-kodo-settings" in blocks["settings_file"]
    assert "&quot;usgovernment&quot;: &quot;usgov&quot;" in blocks["cloud"]
    assert "nothing is sent before SAVE" in blocks["settings_file"]


def test_other_pages_do_not_load_it(admin_a_client, world):
    page = admin_a_client.get(f"/o/{world.org_a.code}/services/office365/configuration/")
    assert "configuration.js" not in page.content.decode()
