"""Searching version names at a service provider's size (issue 14 §8, backups.browse.search).

SQLite: an FTS5 table of the versions' names with the trigram tokenizer (any substring of 3 or
more characters, case-insensitive), external content (the names stay in backups_fileversion
only), kept by triggers on FileVersion so that every write counts, whichever code makes it. The
search reads it to find the few versions a rare name matches instead of reading every name.

PostgreSQL: the trigram index of 0007 serves a rare name; an index on (organization, id) lets a
common name be read newest first along the organization's own versions rather than along the
primary key past other organizations' (the search bounds the walk by the organization's ids).

SQLite drops a table's triggers when a migration rebuilds that table: a later migration altering
FileVersion on SQLite must create them again, as 0010_drive_totals' (tests/backups/
test_name_search.py fails otherwise)."""

from django.db import migrations

SQLITE = [
    """
    CREATE VIRTUAL TABLE backups_fileversion_name USING fts5(
        name, content='backups_fileversion', content_rowid='id', tokenize='trigram'
    )
    """,
    """
    CREATE TRIGGER backups_name_search_insert AFTER INSERT ON backups_fileversion
    BEGIN
        INSERT INTO backups_fileversion_name (rowid, name) VALUES (NEW.id, NEW.name);
    END
    """,
    """
    CREATE TRIGGER backups_name_search_delete AFTER DELETE ON backups_fileversion
    BEGIN
        INSERT INTO backups_fileversion_name (backups_fileversion_name, rowid, name)
        VALUES ('delete', OLD.id, OLD.name);
    END
    """,
    """
    CREATE TRIGGER backups_name_search_update AFTER UPDATE OF id, name ON backups_fileversion
    BEGIN
        INSERT INTO backups_fileversion_name (backups_fileversion_name, rowid, name)
        VALUES ('delete', OLD.id, OLD.name);
        INSERT INTO backups_fileversion_name (rowid, name) VALUES (NEW.id, NEW.name);
    END
    """,
    # The names already there (external content: the index is built from the table).
    "INSERT INTO backups_fileversion_name (backups_fileversion_name) VALUES ('rebuild')",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS backups_name_search_insert",
    "DROP TRIGGER IF EXISTS backups_name_search_delete",
    "DROP TRIGGER IF EXISTS backups_name_search_update",
    "DROP TABLE IF EXISTS backups_fileversion_name",
]

POSTGRESQL = [
    "CREATE INDEX IF NOT EXISTS versions_of_organization "
    "ON backups_fileversion (organization_id, id)",
]
POSTGRESQL_DROP = ["DROP INDEX IF EXISTS versions_of_organization"]


def _run(schema_editor, statements):
    for statement in statements:
        schema_editor.execute(statement, params=None)


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"name search: nothing for {vendor}")
    _run(schema_editor, SQLITE if vendor == "sqlite" else POSTGRESQL)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    _run(schema_editor, SQLITE_DROP if vendor == "sqlite" else POSTGRESQL_DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0011_run_tallies"),
    ]

    operations = [
        migrations.RunPython(create, drop),
    ]
