"""Each drive's current files and bytes, kept by triggers on FileVersion so that the Dashboard
sums one row per drive instead of every current version (issue 14 §8); an index to tell a
protected user (a completed backup) in one probe.

Triggers rather than the engine's code: every write of a version counts, whichever code makes it
(bulk inserts and updates, prune, a removed user's cascade, tests). SQLite drops a table's
triggers when a migration rebuilds that table: a later migration altering FileVersion on SQLite
must create them again (tests/backups/test_drive_totals.py fails otherwise)."""

from django.db import migrations, models

SQLITE = [
    """
    CREATE TRIGGER backups_drive_totals_insert AFTER INSERT ON backups_fileversion
    WHEN NEW.end_run_id IS NULL AND NOT NEW.is_folder
    BEGIN
        UPDATE backups_drivestate
        SET current_files = current_files + 1, current_bytes = current_bytes + NEW.size
        WHERE id = NEW.drive_id;
    END
    """,
    """
    CREATE TRIGGER backups_drive_totals_delete AFTER DELETE ON backups_fileversion
    WHEN OLD.end_run_id IS NULL AND NOT OLD.is_folder
    BEGIN
        UPDATE backups_drivestate
        SET current_files = current_files - 1, current_bytes = current_bytes - OLD.size
        WHERE id = OLD.drive_id;
    END
    """,
    """
    CREATE TRIGGER backups_drive_totals_update
    AFTER UPDATE OF end_run_id, is_folder, size, drive_id ON backups_fileversion
    BEGIN
        UPDATE backups_drivestate
        SET current_files = current_files - 1, current_bytes = current_bytes - OLD.size
        WHERE id = OLD.drive_id AND OLD.end_run_id IS NULL AND NOT OLD.is_folder;
        UPDATE backups_drivestate
        SET current_files = current_files + 1, current_bytes = current_bytes + NEW.size
        WHERE id = NEW.drive_id AND NEW.end_run_id IS NULL AND NOT NEW.is_folder;
    END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS backups_drive_totals_insert",
    "DROP TRIGGER IF EXISTS backups_drive_totals_delete",
    "DROP TRIGGER IF EXISTS backups_drive_totals_update",
]

POSTGRESQL = [
    """
    CREATE FUNCTION backups_drive_totals() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            IF OLD.end_run_id IS NULL AND NOT OLD.is_folder THEN
                UPDATE backups_drivestate
                SET current_files = current_files - 1, current_bytes = current_bytes - OLD.size
                WHERE id = OLD.drive_id;
            END IF;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            IF NEW.end_run_id IS NULL AND NOT NEW.is_folder THEN
                UPDATE backups_drivestate
                SET current_files = current_files + 1, current_bytes = current_bytes + NEW.size
                WHERE id = NEW.drive_id;
            END IF;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER backups_drive_totals
    AFTER INSERT OR DELETE OR UPDATE OF end_run_id, is_folder, size, drive_id ON backups_fileversion
    FOR EACH ROW EXECUTE FUNCTION backups_drive_totals()
    """,
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS backups_drive_totals ON backups_fileversion",
    "DROP FUNCTION IF EXISTS backups_drive_totals()",
]

BACKFILL = """
    UPDATE backups_drivestate SET
        current_files = (
            SELECT COUNT(*) FROM backups_fileversion v
            WHERE v.drive_id = backups_drivestate.id AND v.end_run_id IS NULL AND NOT v.is_folder
        ),
        current_bytes = (
            SELECT COALESCE(SUM(v.size), 0) FROM backups_fileversion v
            WHERE v.drive_id = backups_drivestate.id AND v.end_run_id IS NULL AND NOT v.is_folder
        )
"""


def _run(schema_editor, statements):
    for statement in statements:
        schema_editor.execute(statement, params=None)


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"drive totals: no triggers for {vendor}")
    _run(schema_editor, SQLITE if vendor == "sqlite" else POSTGRESQL)
    _run(schema_editor, [BACKFILL])


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    _run(schema_editor, SQLITE_DROP if vendor == "sqlite" else POSTGRESQL_DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0009_usage_samples"),
    ]

    operations = [
        migrations.AddField(
            model_name="drivestate",
            name="current_bytes",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="drivestate",
            name="current_files",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.AddIndex(
            model_name="backuprun",
            index=models.Index(fields=["directory_user", "status"], name="runs_of_user_by_status"),
        ),
        migrations.AddIndex(
            model_name="backuprun",
            index=models.Index(
                fields=["organization", "created_at", "bytes_stored"], name="runs_by_day"
            ),
        ),
        migrations.AddIndex(
            model_name="backuprun",
            index=models.Index(
                fields=["organization", "status", "created_at"], name="runs_by_status"
            ),
        ),
        migrations.AddIndex(
            model_name="fileversion",
            index=models.Index(
                condition=models.Q(("damage", ""), _negated=True),
                fields=["organization", "damage"],
                name="damaged_in_organization",
            ),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
