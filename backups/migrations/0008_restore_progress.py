from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0007_browse_and_restore"),
    ]

    operations = [
        migrations.AddField(
            model_name="restorejob",
            name="bytes_finished",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="restorejob",
            name="bytes_in_flight",
            field=models.PositiveBigIntegerField(default=0),
        ),
    ]
