from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"

    def ready(self):
        # local: AppConfig.ready runs once the app registry is loaded
        from kodo.crypto import register_encrypted_fields

        # The organizations' chunk-store keys: rotate_encryption_keys re-wraps them too.
        register_encrypted_fields("backups.OrganizationStoreKey", "wrapped_keys")
        # A restore's upload session in progress (its URL lets anyone write the file).
        register_encrypted_fields("backups.RestoreItem", "upload_session")

        from backups.models import BackupRun, RestoreJob, Verification
        from kodo import jobs

        # Recovery and the Tasks page know every kind of job from this registry.
        jobs.register(BackupRun)
        jobs.register(Verification)
        jobs.register(RestoreJob)
