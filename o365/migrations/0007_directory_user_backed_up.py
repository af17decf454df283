"""Whether a directory user has a completed backup (`backed_up`, kept by the triggers of
backups.0011_run_tallies, which also fills it), and indexes (issue 14 §8): a configuration's
users in order (Users tab, Backups page), the counts of users and protected users, and on
PostgreSQL trigram indexes for the searches of the Users tab and the Users page."""

from django.db import migrations, models

# PostgreSQL: the searches of the Users tab (DirectoryFilterForm) and of the Users page
# (o365/people.py), icontains, i.e. UPPER(column::text) LIKE UPPER('%...%'), from trigram
# indexes, one per column searched: {index: (table, column)}.
TRIGRAM_INDEXES = {
    "o365_directoryuser_display_name_trgm": ("o365_directoryuser", "display_name"),
    "o365_directoryuser_mail_trgm": ("o365_directoryuser", "mail"),
    "o365_directoryuser_upn_trgm": ("o365_directoryuser", "user_principal_name"),
    "kodo_auth_user_username_trgm": ("auth_user", "username"),
    "kodo_auth_user_first_name_trgm": ("auth_user", "first_name"),
    "kodo_auth_user_last_name_trgm": ("auth_user", "last_name"),
}


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, column) in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in TRIGRAM_INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("o365", "0006_directoryuser_onedrive_checked_at"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.AddField(
            model_name="directoryuser",
            name="backed_up",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.AddIndex(
            model_name="directoryuser",
            index=models.Index(
                fields=[
                    "configuration",
                    "display_name",
                    "user_principal_name",
                    "mail",
                    "removed_at",
                    "id",
                ],
                name="users_listed",
            ),
        ),
        migrations.AddIndex(
            model_name="directoryuser",
            index=models.Index(
                fields=["configuration", "backed_up", "removed_at"], name="users_protected"
            ),
        ),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes),
    ]
