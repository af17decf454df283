from django.db import migrations


class Migration(migrations.Migration):
    """A backup run's foreign key to its configuration is called `configuration` (its column
    renamed, rows stay)."""

    dependencies = [
        ("backups", "0005_one_job_vocabulary"),
        ("o365", "0004_rename_service_configuration"),
    ]

    operations = [
        migrations.RenameField(
            model_name="backuprun", old_name="service", new_name="configuration"
        ),
    ]
