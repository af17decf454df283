from django.urls import path

from schedules import views

SCHEDULE = "o/<uuid:org_code>/schedules/<uuid:schedule_code>/"

app_name = "schedules"

urlpatterns = [
    path("o/<uuid:org_code>/schedules/", views.schedules, name="schedules"),
    path("o/<uuid:org_code>/schedules/new/", views.schedule_new, name="schedule-new"),
    path("o/<uuid:org_code>/schedules/users/", views.schedule_users, name="schedule-users"),
    path("o/<uuid:org_code>/schedules/preview/", views.schedule_preview, name="schedule-preview"),
    path(SCHEDULE, views.schedule_edit, name="schedule-edit"),
    path(SCHEDULE + "toggle/", views.schedule_toggle, name="schedule-toggle"),
    path(SCHEDULE + "delete/", views.schedule_delete, name="schedule-delete"),
    path(SCHEDULE + "run/", views.schedule_run_now, name="schedule-run-now"),
]
