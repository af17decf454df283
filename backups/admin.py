from django.contrib import admin

from backups.models import (
    BackupRun,
    DamagedChunk,
    DriveState,
    FileVersion,
    RunIssue,
    Verification,
)


class RunIssueInline(admin.TabularInline):
    model = RunIssue
    extra = 0
    readonly_fields = ["kind", "reason", "path", "message", "created_at"]
    exclude = ["item_id"]


@admin.register(BackupRun)
class BackupRunAdmin(admin.ModelAdmin):
    list_display = [
        "directory_user",
        "organization",
        "status",
        "trigger",
        "created_at",
        "files_downloaded",
        "bytes_stored",
        "files_failed",
    ]
    list_filter = ["status", "trigger"]
    search_fields = ["directory_user__user_principal_name", "organization__name", "code"]
    raw_id_fields = ["organization", "configuration", "directory_user", "active_user"]
    inlines = [RunIssueInline]


@admin.register(DriveState)
class DriveStateAdmin(admin.ModelAdmin):
    list_display = ["directory_user", "drive_id", "last_run", "updated_at"]
    raw_id_fields = ["organization", "directory_user", "last_run"]
    exclude = ["delta_link"]


@admin.register(FileVersion)
class FileVersionAdmin(admin.ModelAdmin):
    """Read-only: versions and their chunks are written by backups and pruning only."""

    list_display = ["path", "size", "drive", "first_run", "end_run", "deleted", "damage"]
    search_fields = ["path", "item_id", "quickxorhash"]
    raw_id_fields = ["organization", "drive", "first_run", "end_run"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(DamagedChunk)
class DamagedChunkAdmin(admin.ModelAdmin):
    list_display = ["chunk_id", "organization", "problem", "found_at"]
    list_filter = ["problem"]
    raw_id_fields = ["organization"]


@admin.register(Verification)
class VerificationAdmin(admin.ModelAdmin):
    list_display = [
        "organization",
        "created_at",
        "status",
        "sample",
        "chunks_checked",
        "problems",
        "versions_affected",
    ]
    list_filter = ["status", "trigger"]
    raw_id_fields = ["organization"]
