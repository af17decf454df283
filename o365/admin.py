from django.contrib import admin
from django.db import models

from o365.models import Configuration, DirectoryJob, DirectoryUser


@admin.register(Configuration)
class ConfigurationAdmin(admin.ModelAdmin):
    """Secrets are encrypted and not editable here: change them in the portal."""

    list_display = ["name", "organization", "tenant_id", "cloud", "last_test_ok", "last_test_at"]
    list_filter = ["cloud", "last_test_ok"]
    search_fields = ["name", "tenant_id", "client_id", "organization__name"]
    readonly_fields = [
        "code",
        "certificate_thumbprint",
        "certificate_subject",
        "certificate_not_after",
        "last_test_at",
        "last_test_ok",
        "last_test_message",
        "last_test_missing",
        "last_test_roles",
        "users_synced_at",
        "created_at",
        "updated_at",
    ]
    exclude = ["users_delta_link"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(DirectoryUser)
class DirectoryUserAdmin(admin.ModelAdmin):
    list_display = [
        "display_name",
        "user_principal_name",
        "configuration",
        "account_enabled",
        "licensed",
        "onedrive",
        "removed_at",
    ]
    list_filter = ["onedrive", "licensed", "account_enabled", "is_guest"]
    search_fields = ["display_name", "user_principal_name", "mail", "graph_id"]
    raw_id_fields = ["configuration", "account"]


@admin.register(DirectoryJob)
class DirectoryJobAdmin(admin.ModelAdmin):
    list_display = [
        "configuration",
        "kind",
        "status",
        "trigger",
        "created_at",
        "finished_at",
        "created",
        "updated",
        "conflicts",
    ]
    list_filter = ["kind", "status", "trigger"]
    raw_id_fields = ["configuration", "requested_by"]
