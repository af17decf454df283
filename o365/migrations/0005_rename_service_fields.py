import django.db.models.deletion
from django.db import migrations, models

import o365.models


class Migration(migrations.Migration):
    """What pointed at a configuration under the old name `service` is called `configuration`
    too: the foreign keys of directory users and jobs (their columns renamed, rows stay), the
    related name `configurations` of an organization and of a cloud, and the constraints."""

    dependencies = [
        ("o365", "0004_rename_service_configuration"),
        ("organizations", "0002_account_email_indexes"),
    ]

    operations = [
        # What names the field `service` goes before the rename and comes back after it.
        migrations.RemoveConstraint(
            model_name="configuration",
            name="service_name_per_org",
        ),
        migrations.RemoveConstraint(
            model_name="directoryjob",
            name="one_active_directory_job_per_service",
        ),
        migrations.RemoveConstraint(
            model_name="directoryuser",
            name="one_row_per_graph_user",
        ),
        migrations.RemoveIndex(
            model_name="directoryuser",
            name="o365_direct_service_14a7c9_idx",
        ),
        migrations.RenameField(
            model_name="directoryuser", old_name="service", new_name="configuration"
        ),
        migrations.RenameField(
            model_name="directoryjob", old_name="service", new_name="configuration"
        ),
        migrations.AlterField(
            model_name="configuration",
            name="cloud",
            field=models.ForeignKey(
                default=o365.models.default_cloud_id,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="configurations",
                to="o365.cloud",
            ),
        ),
        migrations.AlterField(
            model_name="configuration",
            name="organization",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="configurations",
                to="organizations.organization",
            ),
        ),
        migrations.AddIndex(
            model_name="directoryuser",
            index=models.Index(
                fields=["configuration", "mail"], name="o365_direct_configu_a8468d_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="configuration",
            constraint=models.UniqueConstraint(
                fields=("organization", "name"), name="configuration_name_per_org"
            ),
        ),
        migrations.AddConstraint(
            model_name="directoryjob",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["queued", "running"])),
                fields=("configuration",),
                name="one_active_directory_job_per_configuration",
            ),
        ),
        migrations.AddConstraint(
            model_name="directoryuser",
            constraint=models.UniqueConstraint(
                fields=("configuration", "graph_id"), name="one_row_per_graph_user"
            ),
        ),
    ]
