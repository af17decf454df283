from django.contrib import admin

from schedules.models import Schedule, ScheduleFiring


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    """Edit schedules in the portal: its wizard keeps the Celery beat entry in step."""

    list_display = [
        "name",
        "organization",
        "configuration",
        "frequency",
        "time",
        "time_zone",
        "enabled",
    ]
    list_filter = ["frequency", "enabled"]
    search_fields = ["name", "organization__name"]
    readonly_fields = ["code", "periodic_task", "created_at", "updated_at"]
    raw_id_fields = ["configuration", "users"]


@admin.register(ScheduleFiring)
class ScheduleFiringAdmin(admin.ModelAdmin):
    list_display = ["schedule", "fired_at", "trigger", "notified_at"]
    raw_id_fields = ["schedule", "runs"]
