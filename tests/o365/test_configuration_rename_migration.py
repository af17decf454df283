"""Migration o365 0004: the model Service becomes Configuration (its table renamed); every row
and every row pointing at it (directory users, backup runs, schedules) survives."""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("o365", "0003_directory_job_is_a_job"),
    ("backups", "0005_one_job_vocabulary"),
    ("schedules", "0001_initial"),
]
AFTER = [
    ("o365", "0004_rename_service_configuration"),
    ("schedules", "0002_schedule_points_at_configuration"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_configurations_and_what_points_at_them_survive_the_rename():
    old = _migrate(BEFORE)
    org = old.get_model("organizations", "Organization").objects.create(
        name="Old", code=uuid.uuid4()
    )
    cloud = old.get_model("o365", "Cloud").objects.create(
        key="rename-cloud",
        name="Rename cloud",
        authority_host="https://login.rename.example",
        graph_base_url="https://graph.rename.example/v1.0",
    )
    service = old.get_model("o365", "Service").objects.create(
        organization=org,
        name="Contoso",
        tenant_id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        cloud=cloud,
        client_secret_encrypted=b"sealed",
    )
    user = old.get_model("o365", "DirectoryUser").objects.create(
        service=service, graph_id="g1", user_principal_name="kim@old.example"
    )
    run = old.get_model("backups", "BackupRun").objects.create(
        organization=org, service=service, directory_user=user
    )
    schedule = old.get_model("schedules", "Schedule").objects.create(
        organization=org, service=service, name="Nightly"
    )
    try:
        new = _migrate(AFTER)
        configuration = new.get_model("o365", "Configuration").objects.get()
        assert (configuration.pk, configuration.code, configuration.name) == (
            service.pk,
            service.code,
            "Contoso",
        )
        assert bytes(configuration.client_secret_encrypted) == b"sealed"
        assert (
            new.get_model("o365", "DirectoryUser").objects.get(pk=user.pk).service == configuration
        )
        assert new.get_model("backups", "BackupRun").objects.get(pk=run.pk).service == configuration
        assert (
            new.get_model("schedules", "Schedule").objects.get(pk=schedule.pk).service
            == configuration
        )
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
