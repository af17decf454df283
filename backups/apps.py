from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"

    def ready(self):
        # local: AppConfig.ready runs once the app registry is loaded
        from kodo.crypto import register_encrypted_fields

        # The organizations' chunk-store keys: rotate_encryption_keys re-wraps them too.
        register_encrypted_fields("backups.OrganizationStoreKey", "wrapped_keys")

        from backups.models import BackupRun, Verification
        from kodo import jobs

        # Recovery and the Tasks page know every kind of job from this registry.
        jobs.register(BackupRun)
        jobs.register(Verification)
