from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from kodo import crypto


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the newest key in KODO_ENCRYPTION_KEYS. "
        "Add the new key in front, run this, then remove the old key."
    )

    def handle(self, *args, **options):
        total = 0
        for label, fields in crypto.ENCRYPTED_FIELDS.items():
            model = apps.get_model(label)
            count = 0
            with transaction.atomic():
                for row in model.objects.select_for_update().only("pk", *fields).iterator():
                    for field in fields:
                        value = bytes(getattr(row, field) or b"")
                        if value:
                            setattr(row, field, crypto.rotate(value))
                    row.save(update_fields=list(fields))
                    count += 1
            self.stdout.write(f"{label}: {count} rows re-encrypted")
            total += count
        self.stdout.write(self.style.SUCCESS(f"Done: {total} rows now use the newest key."))
