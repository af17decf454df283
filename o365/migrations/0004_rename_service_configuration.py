from django.db import migrations


class Migration(migrations.Migration):
    """The model `Service` is called what the UI calls it: a configuration. Its table is
    renamed with it (o365_service -> o365_configuration); rows and foreign keys stay."""

    # After every migration that names "o365.service", so that they apply before the rename.
    dependencies = [
        ("o365", "0003_directory_job_is_a_job"),
        ("backups", "0005_one_job_vocabulary"),
        ("schedules", "0001_initial"),
    ]

    operations = [
        migrations.RenameModel(old_name="Service", new_name="Configuration"),
    ]
