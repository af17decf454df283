"""`make run` (manage.py create_demo): the demo organization reaches the simulator with a
configuration typed in as the manual says (a name, Tenant ID, Client ID, Client Secret)."""

import io
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.core.management import call_command

from o365.models import Cloud, Configuration, default_cloud_for
from organizations.models import Organization


def _create_demo(running):
    graph, download = urlsplit(running.info["graph_base"]), urlsplit(running.info["download_base"])
    call_command(
        "create_demo",
        sim_state_dir=running.info["state_dir"],
        sim_host=graph.hostname,
        sim_port=graph.port,
        sim_download_port=download.port,
        stdout=io.StringIO(),
    )


def test_a_hand_typed_demo_configuration_works_with_no_extra_fields(db, client, m365sim):
    _create_demo(m365sim)
    client.force_login(get_user_model().objects.get(username="admin@demo.example"))
    org = Organization.objects.get(name="Demo Organization")
    tenant = m365sim.info["tenants"][0]
    app = next(a for a in tenant["apps"] if a["name"] == "Kodo Backup")
    base = f"/o/{org.code}/services/office365/configuration/"

    response = client.post(
        base + "new/",
        {
            "name": "Demo tenant",
            "tenant_id": tenant["tenant_id"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )

    assert response.status_code == 302
    configuration = Configuration.objects.get(organization=org)
    assert configuration.cloud.name == "m365sim"
    client.post(base + f"{configuration.code}/test/")
    configuration.refresh_from_db()
    assert configuration.last_test_ok, configuration.last_test_message


def test_the_simulator_cloud_is_private_enabled_and_default_for_the_demo_only(db, m365sim):
    _create_demo(m365sim)
    _create_demo(m365sim)  # make run again: nothing doubled

    cloud = Cloud.objects.get(name="m365sim")
    demo = Organization.objects.get(name="Demo Organization")
    other = Organization.objects.create(name="Other")
    assert cloud.private_network_allowed and not cloud.all_organizations
    assert default_cloud_for(demo) == cloud
    assert cloud not in Cloud.objects.enabled_for(other)
    assert default_cloud_for(other).key == "global"
