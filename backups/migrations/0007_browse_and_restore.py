"""Restore jobs and their items; indexes for browsing (a folder as of a run, deleted items) and,
on PostgreSQL, a trigram index for searching names (Django's icontains is
UPPER(name::text) LIKE UPPER(%s): the index is on that expression)."""

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


TRIGRAM_INDEX = "backups_fileversion_name_trgm"


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON backups_fileversion "
        "USING gin ((UPPER(name::text)) gin_trgm_ops)"
    )


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0006_rename_service_fields"),
        ("o365", "0005_rename_service_fields"),
        ("organizations", "0003_admins_may_download"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="RestoreItem",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("is_folder", models.BooleanField(default=False)),
                ("source_path", models.TextField()),
                ("target_path", models.TextField()),
                ("size", models.PositiveBigIntegerField(default=0)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("restored", "Restored"),
                            ("skipped", "Skipped"),
                            ("failed", "Failed"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("message", models.TextField(blank=True)),
                ("upload_session", models.BinaryField(blank=True, null=True)),
                ("upload_expires_at", models.DateTimeField(blank=True, null=True)),
                ("bytes_done", models.PositiveBigIntegerField(default=0)),
                ("new_item_id", models.CharField(blank=True, max_length=200)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["id"],
            },
        ),
        migrations.CreateModel(
            name="RestoreJob",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("succeeded", "Succeeded"),
                            ("partial", "Partially succeeded"),
                            ("failed", "Failed"),
                            ("skipped", "Skipped"),
                            ("canceled", "Canceled"),
                        ],
                        db_index=True,
                        default="queued",
                        max_length=10,
                    ),
                ),
                (
                    "trigger",
                    models.CharField(
                        choices=[
                            ("manual", "Backup now"),
                            ("schedule", "Schedule"),
                            ("command", "Command"),
                        ],
                        default="manual",
                        max_length=10,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("error", models.TextField(blank=True)),
                ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                ("claim_token", models.UUIDField(blank=True, editable=False, null=True)),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("sent_at", models.DateTimeField(blank=True, editable=False, null=True)),
                ("phase", models.CharField(blank=True, max_length=200)),
                ("code", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("as_of", models.DateTimeField(blank=True, null=True)),
                (
                    "what",
                    models.CharField(
                        choices=[
                            ("selection", "The selected files and folders"),
                            ("drive", "The whole OneDrive"),
                            ("deleted", "Deleted items only"),
                        ],
                        default="selection",
                        max_length=10,
                    ),
                ),
                ("paths", models.JSONField(blank=True, default=list)),
                ("version_ids", models.JSONField(blank=True, default=list)),
                (
                    "where",
                    models.CharField(
                        choices=[
                            ("new_folder", "A new folder in the OneDrive"),
                            ("original", "The original location"),
                            ("folder", "Another folder"),
                        ],
                        default="new_folder",
                        max_length=10,
                    ),
                ),
                ("folder", models.TextField(blank=True)),
                (
                    "conflict",
                    models.CharField(
                        choices=[
                            ("skip", "Skip it"),
                            ("replace", "Replace it"),
                            ("rename", "Keep both (rename)"),
                        ],
                        default="skip",
                        max_length=8,
                    ),
                ),
                ("requested_by_email", models.CharField(blank=True, max_length=254)),
                (
                    "planned",
                    models.BooleanField(
                        default=False, help_text="Its RestoreItems are all listed."
                    ),
                ),
                ("target_drive_id", models.CharField(blank=True, max_length=200)),
                ("files_total", models.PositiveIntegerField(default=0)),
                ("bytes_total", models.PositiveBigIntegerField(default=0)),
                ("files_restored", models.PositiveIntegerField(default=0)),
                ("bytes_restored", models.PositiveBigIntegerField(default=0)),
                ("files_skipped", models.PositiveIntegerField(default=0)),
                ("files_failed", models.PositiveIntegerField(default=0)),
                ("bytes_uploaded", models.PositiveBigIntegerField(default=0)),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.AddIndex(
            model_name="fileversion",
            index=models.Index(
                fields=["drive", "parent_id", "first_run"], name="versions_in_folder"
            ),
        ),
        migrations.AddIndex(
            model_name="fileversion",
            index=models.Index(
                condition=models.Q(("deleted", True)),
                fields=["drive", "end_run"],
                name="deleted_versions",
            ),
        ),
        migrations.AddField(
            model_name="restoreitem",
            name="version",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="backups.fileversion",
            ),
        ),
        migrations.AddField(
            model_name="restorejob",
            name="as_of_run",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="backups.backuprun",
            ),
        ),
        migrations.AddField(
            model_name="restorejob",
            name="organization",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="restore_jobs",
                to="organizations.organization",
            ),
        ),
        migrations.AddField(
            model_name="restorejob",
            name="requested_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="restorejob",
            name="source_user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="restores_from",
                to="o365.directoryuser",
            ),
        ),
        migrations.AddField(
            model_name="restorejob",
            name="target_user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="restores_to",
                to="o365.directoryuser",
            ),
        ),
        migrations.AddField(
            model_name="restoreitem",
            name="restore",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="items",
                to="backups.restorejob",
            ),
        ),
        migrations.AddIndex(
            model_name="restorejob",
            index=models.Index(
                fields=["organization", "-created_at"], name="backups_res_organiz_584262_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="restorejob",
            index=models.Index(
                fields=["source_user", "-created_at"], name="backups_res_source__1da2f3_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="restoreitem",
            index=models.Index(fields=["restore", "status"], name="backups_res_restore_36a8f8_idx"),
        ),
        migrations.RunPython(create_trigram_index, drop_trigram_index),
    ]
