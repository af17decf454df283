"""Directory sync matches Microsoft 365 addresses to accounts case-insensitively (LOWER(username),
LOWER(email)); without these expression indexes each batch of 1,000 addresses scans the whole
account table on PostgreSQL. The same SQL works on SQLite."""

from django.db import migrations

INDEXES = {
    "kodo_auth_user_lower_username": "username",
    "kodo_auth_user_lower_email": "email",
}


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {name} ON auth_user (LOWER({column}))",
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, column in INDEXES.items()
    ]
