"""The download policy (on by default; a database default too, so rows written by code that
predates the field, e.g. older migrations' historical models, get it)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0002_account_email_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="admins_may_download",
            field=models.BooleanField(
                default=True,
                db_default=True,
                help_text="Administrators may download users' data. When off, they can only restore it to Microsoft 365.",
            ),
        ),
    ]
