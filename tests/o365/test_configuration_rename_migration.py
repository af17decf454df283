"""Migration o365 0004: the model Service becomes Configuration (its table renamed); every row
and every row pointing at it (directory users, backup runs, schedules) survives. Then o365 0005,
backups 0006 and schedules 0003: the foreign keys named `service` become `configuration`, and
what they point at stays."""

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
FIELDS_RENAMED = [
    ("o365", "0005_rename_service_fields"),
    ("backups", "0006_rename_service_fields"),
    ("schedules", "0003_rename_service_fields"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def _old_configuration(old, model="Service"):
    org = old.get_model("organizations", "Organization").objects.create(
        name="Old", code=uuid.uuid4()
    )
    cloud = old.get_model("o365", "Cloud").objects.create(
        key="rename-cloud",
        name="Rename cloud",
        authority_host="https://login.rename.example",
        graph_base_url="https://graph.rename.example/v1.0",
    )
    service = old.get_model("o365", model).objects.create(
        organization=org,
        name="Contoso",
        tenant_id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        cloud=cloud,
        client_secret_encrypted=b"sealed",
    )
    return org, service


@pytest.mark.django_db(transaction=True)
def test_configurations_and_what_points_at_them_survive_the_rename():
    old = _migrate(BEFORE)
    org, service = _old_configuration(old)
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


@pytest.mark.django_db(transaction=True)
def test_foreign_keys_named_service_become_configuration_and_keep_pointing_at_it():
    old = _migrate(AFTER + [("backups", "0005_one_job_vocabulary")])
    org, configuration = _old_configuration(old, model="Configuration")
    user = old.get_model("o365", "DirectoryUser").objects.create(
        service=configuration, graph_id="g1", user_principal_name="kim@old.example"
    )
    job = old.get_model("o365", "DirectoryJob").objects.create(service=configuration)
    run = old.get_model("backups", "BackupRun").objects.create(
        organization=org, service=configuration, directory_user=user
    )
    schedule = old.get_model("schedules", "Schedule").objects.create(
        organization=org, service=configuration, name="Nightly"
    )
    try:
        new = _migrate(FIELDS_RENAMED)
        for app, model, pk in [
            ("o365", "DirectoryUser", user.pk),
            ("o365", "DirectoryJob", job.pk),
            ("backups", "BackupRun", run.pk),
            ("schedules", "Schedule", schedule.pk),
        ]:
            row = new.get_model(app, model).objects.get(pk=pk)
            assert row.configuration_id == configuration.pk, model
        renamed = new.get_model("o365", "Configuration").objects.get(pk=configuration.pk)
        assert renamed.organization.configurations.get() == renamed
        assert renamed.directory_users.get().graph_id == "g1"
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
