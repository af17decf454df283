"""Daily usage samples of each organization, for the monthly usage report (billing); indexes
for the overview across organizations (protected users, users not backed up lately, backups of
the last day by result, data stored: each read from an index)."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0008_restore_progress"),
        ("organizations", "0003_admins_may_download"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageSample",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("protected_users", models.PositiveIntegerField(default=0)),
                ("stored_bytes", models.PositiveBigIntegerField(default=0)),
                ("recorded_at", models.DateTimeField(auto_now=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="usage_samples",
                        to="organizations.organization",
                    ),
                ),
            ],
            options={
                "ordering": ["organization", "day"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("organization", "day"), name="one_sample_per_day"
                    )
                ],
            },
        ),
        migrations.AddIndex(
            model_name="backuprun",
            index=models.Index(
                condition=Q(finished_at__isnull=False),
                fields=["organization", "status", "finished_at"],
                name="runs_by_result",
            ),
        ),
        migrations.AddIndex(
            model_name="backuprun",
            index=models.Index(
                condition=Q(bytes_stored__gt=0),
                fields=["organization", "bytes_stored"],
                name="runs_stored",
            ),
        ),
        migrations.AddIndex(
            model_name="drivestate",
            index=models.Index(
                condition=Q(last_run__isnull=False),
                fields=["organization", "directory_user", "last_run"],
                name="drives_backed_up",
            ),
        ),
        migrations.AddIndex(
            model_name="drivestate",
            index=models.Index(
                condition=Q(last_run__isnull=False),
                fields=["updated_at", "organization", "directory_user", "last_run"],
                name="drives_late",
            ),
        ),
        migrations.AddIndex(
            model_name="drivestate",
            index=models.Index(
                condition=Q(last_run__isnull=False),
                fields=["directory_user", "updated_at", "last_run"],
                name="drives_of_user",
            ),
        ),
    ]
