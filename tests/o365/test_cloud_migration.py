"""Migration 0002: configurations of the old per-configuration "Custom" cloud keep working on a
custom cloud made from their endpoints, enabled for their organization."""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("o365", "0001_initial")]
AFTER = [("o365", "0002_clouds")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_old_custom_configurations_get_a_custom_cloud_of_their_organization():
    old = _migrate(BEFORE)
    Organization = old.get_model("organizations", "Organization")
    Service = old.get_model("o365", "Service")
    org = Organization.objects.create(name="Old", code=uuid.uuid4())
    other = Organization.objects.create(name="Other", code=uuid.uuid4())
    for n, (organization, cloud, host) in enumerate(
        [
            (org, "custom", "https://127.0.0.1:9443"),
            (other, "custom", "https://127.0.0.1:9443"),
            (org, "custom", "https://login.sovereign.example"),
            (org, "usgov", ""),
        ]
    ):
        Service.objects.create(
            organization=organization,
            name=f"s{n}",
            code=uuid.uuid4(),
            tenant_id=uuid.uuid4(),
            client_id=uuid.uuid4(),
            cloud=cloud,
            authority_host=host,
            graph_base_url=f"{host}/v1.0" if host else "",
        )
    try:
        new = _migrate(AFTER)
        Service = new.get_model("o365", "Service")
        clouds = {s.name: s.cloud for s in Service.objects.select_related("cloud")}
        assert clouds["s0"] == clouds["s1"]  # one cloud per distinct endpoint
        assert clouds["s0"].private_network_allowed  # loopback: a local simulator
        assert not clouds["s2"].private_network_allowed
        assert clouds["s2"].authority_host == "https://login.sovereign.example"
        assert clouds["s3"].key == "usgov"
        CloudAccess = new.get_model("o365", "CloudAccess")
        assert set(
            CloudAccess.objects.filter(cloud=clouds["s0"]).values_list(
                "organization__name", flat=True
            )
        ) == {"Old", "Other"}
        assert set(
            CloudAccess.objects.filter(cloud=clouds["s2"]).values_list(
                "organization__name", flat=True
            )
        ) == {"Old"}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
