"""Tallies of the backup runs kept by triggers on BackupRun, so that the Dashboard, the overview
and the usage report read a few rows instead of every run or a probe per user (issue 14 §8):

- DirectoryUser.backed_up: the user has a completed backup (succeeded or partial), i.e. is
  *protected* (backups/overview.py);
- StoredBytes: the runs' bytes_stored summed per organization and quarter hour of the runs'
  created_at (Unix time // 900).

Triggers rather than the engine's code, as in 0010_drive_totals: every write of a run counts
(bulk inserts, BackupRun.add's F() updates, a removed user's cascade, tests). SQLite drops a
table's triggers when a migration rebuilds that table: a later migration altering BackupRun on
SQLite must create them again (tests/backups/test_run_tallies.py fails otherwise)."""

import django.db.models.deletion
from django.db import migrations, models

# A completed backup: jobs.Status.SUCCEEDED and PARTIAL. A quarter: Unix time // 900.
SQLITE = [
    """
    CREATE TRIGGER backups_run_tallies_insert AFTER INSERT ON backups_backuprun
    BEGIN
        UPDATE o365_directoryuser SET backed_up = 1
        WHERE id = NEW.directory_user_id AND NEW.status IN ('succeeded', 'partial')
        AND NOT backed_up;
        INSERT INTO backups_storedbytes (organization_id, quarter, bytes_stored)
        SELECT NEW.organization_id, CAST(strftime('%s', NEW.created_at) AS INTEGER) / 900,
            NEW.bytes_stored
        WHERE NEW.bytes_stored <> 0
        ON CONFLICT (organization_id, quarter)
        DO UPDATE SET bytes_stored = bytes_stored + excluded.bytes_stored;
    END
    """,
    """
    CREATE TRIGGER backups_run_tallies_delete AFTER DELETE ON backups_backuprun
    BEGIN
        UPDATE o365_directoryuser SET backed_up = EXISTS(
            SELECT 1 FROM backups_backuprun r
            WHERE r.directory_user_id = OLD.directory_user_id
            AND r.status IN ('succeeded', 'partial')
        )
        WHERE id = OLD.directory_user_id AND OLD.status IN ('succeeded', 'partial');
        UPDATE backups_storedbytes SET bytes_stored = bytes_stored - OLD.bytes_stored
        WHERE organization_id = OLD.organization_id
        AND quarter = CAST(strftime('%s', OLD.created_at) AS INTEGER) / 900
        AND OLD.bytes_stored <> 0;
    END
    """,
    # Bytes: BackupRun.add changes one quarter's row (one statement); a run moved to another
    # quarter or organization takes its bytes from the old row to the new one.
    """
    CREATE TRIGGER backups_run_tallies_update
    AFTER UPDATE OF status, directory_user_id, organization_id, created_at, bytes_stored
    ON backups_backuprun
    BEGIN
        UPDATE o365_directoryuser SET backed_up = EXISTS(
            SELECT 1 FROM backups_backuprun r
            WHERE r.directory_user_id = OLD.directory_user_id
            AND r.status IN ('succeeded', 'partial')
        )
        WHERE id = OLD.directory_user_id AND OLD.status IN ('succeeded', 'partial')
        AND (NEW.status NOT IN ('succeeded', 'partial')
             OR NEW.directory_user_id <> OLD.directory_user_id);
        UPDATE o365_directoryuser SET backed_up = 1
        WHERE id = NEW.directory_user_id AND NEW.status IN ('succeeded', 'partial')
        AND NOT backed_up;
        INSERT INTO backups_storedbytes (organization_id, quarter, bytes_stored)
        SELECT NEW.organization_id, CAST(strftime('%s', NEW.created_at) AS INTEGER) / 900,
            NEW.bytes_stored - OLD.bytes_stored
        WHERE NEW.bytes_stored <> OLD.bytes_stored
        AND NEW.organization_id = OLD.organization_id
        AND CAST(strftime('%s', NEW.created_at) AS INTEGER) / 900
            = CAST(strftime('%s', OLD.created_at) AS INTEGER) / 900
        ON CONFLICT (organization_id, quarter)
        DO UPDATE SET bytes_stored = bytes_stored + excluded.bytes_stored;
        UPDATE backups_storedbytes SET bytes_stored = bytes_stored - OLD.bytes_stored
        WHERE organization_id = OLD.organization_id
        AND quarter = CAST(strftime('%s', OLD.created_at) AS INTEGER) / 900
        AND OLD.bytes_stored <> 0
        AND (NEW.organization_id <> OLD.organization_id
             OR CAST(strftime('%s', NEW.created_at) AS INTEGER) / 900
                <> CAST(strftime('%s', OLD.created_at) AS INTEGER) / 900);
        INSERT INTO backups_storedbytes (organization_id, quarter, bytes_stored)
        SELECT NEW.organization_id, CAST(strftime('%s', NEW.created_at) AS INTEGER) / 900,
            NEW.bytes_stored
        WHERE NEW.bytes_stored <> 0
        AND (NEW.organization_id <> OLD.organization_id
             OR CAST(strftime('%s', NEW.created_at) AS INTEGER) / 900
                <> CAST(strftime('%s', OLD.created_at) AS INTEGER) / 900)
        ON CONFLICT (organization_id, quarter)
        DO UPDATE SET bytes_stored = bytes_stored + excluded.bytes_stored;
    END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS backups_run_tallies_insert",
    "DROP TRIGGER IF EXISTS backups_run_tallies_delete",
    "DROP TRIGGER IF EXISTS backups_run_tallies_update",
]

POSTGRESQL = [
    """
    CREATE FUNCTION backups_run_tallies() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        old_quarter bigint;
        new_quarter bigint;
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            old_quarter := floor(extract(epoch FROM OLD.created_at) / 900);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            new_quarter := floor(extract(epoch FROM NEW.created_at) / 900);
        END IF;
        -- backed_up: set by a completed run, counted again when one goes or changes
        IF TG_OP <> 'INSERT' AND OLD.status IN ('succeeded', 'partial') THEN
            IF TG_OP = 'DELETE' THEN
                PERFORM backups_run_tallies_recount(OLD.directory_user_id);
            ELSIF NEW.status NOT IN ('succeeded', 'partial')
                    OR NEW.directory_user_id <> OLD.directory_user_id THEN
                PERFORM backups_run_tallies_recount(OLD.directory_user_id);
            END IF;
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.status IN ('succeeded', 'partial') THEN
            UPDATE o365_directoryuser SET backed_up = true
            WHERE id = NEW.directory_user_id AND NOT backed_up;
        END IF;
        -- bytes stored: one change of the quarter's row (BackupRun.add), or a move between two
        IF TG_OP = 'UPDATE' AND NEW.organization_id = OLD.organization_id
                AND new_quarter = old_quarter THEN
            PERFORM backups_run_tallies_add(NEW.organization_id, new_quarter,
                                            NEW.bytes_stored - OLD.bytes_stored);
        ELSE
            IF TG_OP <> 'INSERT' AND OLD.bytes_stored <> 0 THEN
                UPDATE backups_storedbytes SET bytes_stored = bytes_stored - OLD.bytes_stored
                WHERE organization_id = OLD.organization_id AND quarter = old_quarter;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                PERFORM backups_run_tallies_add(NEW.organization_id, new_quarter,
                                                NEW.bytes_stored);
            END IF;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION backups_run_tallies_recount(user_id bigint) RETURNS void
    LANGUAGE sql AS $$
        UPDATE o365_directoryuser SET backed_up = EXISTS(
            SELECT 1 FROM backups_backuprun r
            WHERE r.directory_user_id = user_id AND r.status IN ('succeeded', 'partial')
        )
        WHERE id = user_id
    $$
    """,
    """
    CREATE FUNCTION backups_run_tallies_add(organization bigint, at_quarter bigint, amount bigint)
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF amount <> 0 THEN
            INSERT INTO backups_storedbytes (organization_id, quarter, bytes_stored)
            VALUES (organization, at_quarter, amount)
            ON CONFLICT (organization_id, quarter)
            DO UPDATE SET bytes_stored = backups_storedbytes.bytes_stored + EXCLUDED.bytes_stored;
        END IF;
    END
    $$
    """,
    """
    CREATE TRIGGER backups_run_tallies
    AFTER INSERT OR DELETE
    OR UPDATE OF status, directory_user_id, organization_id, created_at, bytes_stored
    ON backups_backuprun
    FOR EACH ROW EXECUTE FUNCTION backups_run_tallies()
    """,
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS backups_run_tallies ON backups_backuprun",
    "DROP FUNCTION IF EXISTS backups_run_tallies()",
    "DROP FUNCTION IF EXISTS backups_run_tallies_recount(bigint)",
    "DROP FUNCTION IF EXISTS backups_run_tallies_add(bigint, bigint, bigint)",
]

BACKFILL_BACKED_UP = """
    UPDATE o365_directoryuser SET backed_up = EXISTS(
        SELECT 1 FROM backups_backuprun r
        WHERE r.directory_user_id = o365_directoryuser.id AND r.status IN ('succeeded', 'partial')
    )
"""
BACKFILL_STORED = """
    INSERT INTO backups_storedbytes (organization_id, quarter, bytes_stored)
    SELECT organization_id, {quarter}, SUM(bytes_stored) FROM backups_backuprun
    WHERE bytes_stored <> 0 GROUP BY 1, 2
"""
QUARTER = {
    "sqlite": "CAST(strftime('%s', created_at) AS INTEGER) / 900",
    "postgresql": "floor(extract(epoch FROM created_at) / 900)",
}


def _run(schema_editor, statements):
    for statement in statements:
        schema_editor.execute(statement, params=None)


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"run tallies: no triggers for {vendor}")
    _run(schema_editor, SQLITE if vendor == "sqlite" else POSTGRESQL)
    _run(schema_editor, [BACKFILL_BACKED_UP, BACKFILL_STORED.format(quarter=QUARTER[vendor])])


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    _run(schema_editor, SQLITE_DROP if vendor == "sqlite" else POSTGRESQL_DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0010_drive_totals"),
        ("o365", "0007_directory_user_backed_up"),
        ("organizations", "0004_self_service_operator_microsoft_identity"),
    ]

    operations = [
        migrations.CreateModel(
            name="StoredBytes",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("quarter", models.BigIntegerField()),
                ("bytes_stored", models.BigIntegerField(default=0)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="organizations.organization",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("organization", "quarter"), name="one_stored_bytes_per_quarter"
                    )
                ],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
