"""manage.py add_configuration: the portal's + ADD CONFIGURATION from a KodoADSettings.json, with
the form's validation, clear messages and exit status 1 on any problem, an audit entry, and never
the secret on the screen."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from kodo import crypto
from o365.models import Configuration
from organizations.models import AuditEvent
from tests.factories import PFX_PASSWORD, SECRET, kodo_settings_json, make_configuration


def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("add_configuration", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def _refused(*args) -> str:
    with pytest.raises(CommandError) as refused:
        _run(*args)
    return str(refused.value)


@pytest.fixture
def settings_file(tmp_path):
    def write(content: bytes | None = None, **overrides):
        path = tmp_path / "KodoADSettings.json"
        path.write_bytes(content if content is not None else kodo_settings_json(**overrides))
        return str(path)

    return write


def test_it_adds_the_configuration_the_file_describes(world, settings_file):
    output = _run("--organization", world.org_a.name, "--from", settings_file())

    configuration = Configuration.objects.get(organization=world.org_a)
    assert configuration.name == "Kodo Backup"
    assert configuration.has_client_secret and configuration.has_certificate
    assert crypto.decrypt_text(configuration.client_secret_encrypted) == SECRET
    assert configuration.cloud.key == "global"
    assert "Added the configuration Kodo Backup to Alpha University" in output
    assert str(configuration.code) in output
    assert SECRET not in output and PFX_PASSWORD not in output
    event = AuditEvent.objects.get(action="configuration_created")
    assert event.organization == world.org_a
    assert event.actor_email == "manage.py add_configuration"
    assert "Kodo Backup" in event.message and SECRET not in event.message


def test_the_name_and_the_organization_code_may_be_given(world, settings_file):
    _run("--organization", str(world.org_a.code), "--from", settings_file(), "--name", "Contoso")

    assert Configuration.objects.get(organization=world.org_a).name == "Contoso"


def test_a_cloud_named_on_the_command_line_is_used(world, settings_file):
    _run("--organization", world.org_a.name, "--from", settings_file(), "--cloud", "US Government")

    assert Configuration.objects.get(organization=world.org_a).cloud.key != "global"


@pytest.mark.parametrize(
    ("content", "overrides", "message"),
    [
        (b"{not json", {}, "not valid JSON (line 1, column 2)"),
        (None, {"TenantId": "not-a-guid"}, "TenantId in KodoADSettings.json must be a GUID"),
        (None, {"ClientSecret": None, "CertificatePfxBase64": None}, "neither a ClientSecret"),
        (
            None,
            {"ClientSecret": None, "CertificatePassword": "wrong"},
            "The Certificate Password does not open this PFX file",
        ),
        (None, {"AppName": "Kodo\nBackup"}, "one line"),
        (None, {"Cloud": "Mars"}, "unknown Cloud 'Mars'"),
        (b"x" * 300_000, {}, "larger than 256 KB"),
    ],
)
def test_a_bad_file_is_refused_with_the_forms_message(
    world, settings_file, content, overrides, message
):
    path = settings_file(content, **overrides)

    refused = _refused("--organization", world.org_a.name, "--from", path)

    assert "The configuration was not added" in refused and message in refused
    assert SECRET not in refused and PFX_PASSWORD not in refused
    assert not Configuration.objects.exists()
    assert not AuditEvent.objects.filter(action="configuration_created").exists()


def test_a_name_already_used_is_refused(world, settings_file):
    make_configuration(world.org_a, name="Kodo Backup")

    refused = _refused("--organization", world.org_a.name, "--from", settings_file())

    assert "Name: A configuration with this name already exists." in refused
    assert "Choose the file again" not in refused  # the portal's words for a browser
    assert Configuration.objects.count() == 1


@pytest.mark.parametrize(
    ("organization", "path", "cloud", "message"),
    [
        ("Nobody Inc", None, "", "No organization named or coded 'Nobody Inc'"),
        ("Alpha University", "/nonexistent/KodoADSettings.json", "", "Cannot read"),
        ("Alpha University", None, "Mars", "No cloud is named 'Mars'"),
    ],
)
def test_a_wrong_argument_is_named(world, settings_file, organization, path, cloud, message):
    args = ["--organization", organization, "--from", path or settings_file()]
    if cloud:
        args += ["--cloud", cloud]

    assert message in _refused(*args)
    assert not Configuration.objects.exists()


def test_an_organization_without_services_is_refused(world, settings_file):
    world.org_a.services_enabled = False
    world.org_a.save(update_fields=["services_enabled"])

    refused = _refused("--organization", world.org_a.name, "--from", settings_file())

    assert "Services are not enabled for Alpha University" in refused
    assert not Configuration.objects.exists()


def test_the_command_exits_1_on_a_problem(world, tmp_path):
    from django.core.management import ManagementUtility

    path = tmp_path / "KodoADSettings.json"
    path.write_text(json.dumps({"TenantId": "x"}))
    utility = ManagementUtility(
        [
            "manage.py",
            "add_configuration",
            "--organization",
            "Alpha University",
            "--from",
            str(path),
        ]
    )
    with pytest.raises(SystemExit) as exit_status:
        utility.execute()

    assert exit_status.value.code == 1
