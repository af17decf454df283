from django.db import migrations


class Migration(migrations.Migration):
    """A schedule's foreign key to its configuration is called `configuration` (its column
    renamed, rows stay)."""

    dependencies = [
        ("schedules", "0002_schedule_points_at_configuration"),
    ]

    operations = [
        migrations.RenameField(model_name="schedule", old_name="service", new_name="configuration"),
    ]
