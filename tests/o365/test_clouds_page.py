"""The server administrator's Clouds page: custom clouds, and which organizations may use each."""

import pytest

from o365.connection import check_connection
from o365.models import Cloud, CloudAccess, Configuration
from organizations.models import AuditEvent
from tests.factories import make_configuration

NEW = "/server/clouds/new/"


def _fields(**values):
    base = {
        "name": "Sovereign",
        "authority_host": "https://login.sovereign.example",
        "graph_base_url": "https://graph.sovereign.example/v1.0",
        "download_hosts": "*.files.sovereign.example\nfiles.sovereign.example:8443",
        "organizations": [],
    }
    base.update(values)
    return base


def test_the_server_admin_adds_a_custom_cloud_for_chosen_organizations(server_admin_client, world):
    response = server_admin_client.post(
        NEW, _fields(organizations=[world.org_a.pk], default_for=[world.org_a.pk])
    )

    assert response.status_code == 302
    cloud = Cloud.objects.get(name="Sovereign")
    assert not cloud.private_network_allowed and not cloud.all_organizations
    assert list(Cloud.objects.enabled_for(world.org_a).filter(pk=cloud.pk)) == [cloud]
    assert not Cloud.objects.enabled_for(world.org_b).filter(pk=cloud.pk).exists()
    assert CloudAccess.objects.get(cloud=cloud, organization=world.org_a).is_default
    endpoints = cloud.endpoints()
    assert endpoints.allows_host("x.files.sovereign.example", 443)
    assert endpoints.allows_host("files.sovereign.example", 8443)
    assert not endpoints.allows_host("files.sovereign.example", 443)
    assert AuditEvent.objects.filter(action="cloud_created").exists()
    assert "Sovereign" in server_admin_client.get("/server/clouds/").content.decode()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"authority_host": "http://login.sovereign.example"}, "must be an https:// address"),
        ({"authority_host": "https://login.sovereign.example/tenant"}, "without a path"),
        ({"graph_base_url": "https://[::1"}, "not a valid address"),
        ({"download_hosts": "https://files.example/path"}, "without a scheme or path"),
        ({"download_hosts": "*.com"}, "too wide"),
        ({"download_hosts": "a*b.example"}, "must be a host name"),
        ({"ca_certificate": "garbage"}, "must be PEM text"),
        ({"name": "Global"}, "reserved"),
        ({"name": "US Government"}, "reserved"),
        ({"name": "sovereign  "}, "already exists"),
        ({"name": "Two\nlines"}, "line"),
        ({"default_for": ["ORG_B"]}, "only of organizations it is enabled for"),
    ],
)
def test_bad_cloud_settings_get_a_clear_message(server_admin_client, world, fields, message):
    if fields.get("default_for") == ["ORG_B"]:
        fields = {"default_for": [world.org_b.pk]}
    Cloud.objects.create(key="sovereign", name="Sovereign")
    response = server_admin_client.post(
        NEW, _fields(**fields, **({} if "name" in fields else {"name": "Another"}))
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Cloud.objects.exclude(key__in=["global", "usgov", "china", "sovereign"]).exists()


def test_a_built_in_clouds_endpoints_cannot_be_changed(server_admin_client, world):
    server_admin_client.get("/server/clouds/")
    china = Cloud.objects.get(key="china")
    response = server_admin_client.post(
        f"/server/clouds/{china.code}/",
        {"authority_host": "https://169.254.169.254", "organizations": [world.org_a.pk]},
    )
    assert response.status_code == 302
    china.refresh_from_db()
    assert china.authority_host == "" and not china.all_organizations
    assert china.endpoints().authority_host == "https://login.chinacloudapi.cn"
    assert not Cloud.objects.enabled_for(world.org_b).filter(pk=china.pk).exists()


def test_only_the_server_admin_sees_the_clouds_pages(admin_a_client, world):
    assert admin_a_client.get("/server/clouds/").status_code == 404
    assert admin_a_client.post(NEW, _fields()).status_code == 404
    assert not Cloud.objects.filter(name="Sovereign").exists()


def test_a_cloud_in_use_is_not_deleted(server_admin_client, world):
    server_admin_client.post(NEW, _fields(organizations=[world.org_a.pk]))
    cloud = Cloud.objects.get(name="Sovereign")
    make_configuration(world.org_a, cloud=cloud)
    server_admin_client.post(f"/server/clouds/{cloud.code}/delete/")
    assert Cloud.objects.filter(pk=cloud.pk).exists()
    Configuration.objects.all().delete()
    server_admin_client.post(f"/server/clouds/{cloud.code}/delete/")
    assert not Cloud.objects.filter(pk=cloud.pk).exists()


def test_a_configuration_on_a_cloud_no_longer_enabled_connects_nowhere(server_admin_client, world):
    server_admin_client.post(NEW, _fields(organizations=[world.org_a.pk]))
    cloud = Cloud.objects.get(name="Sovereign")
    configuration = make_configuration(world.org_a, cloud=cloud)
    server_admin_client.post(f"/server/clouds/{cloud.code}/", _fields(organizations=[]))

    result = check_connection(configuration)

    assert not result.ok
    assert "no longer enabled for this organization" in result.summary
