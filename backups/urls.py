from django.urls import path

from backups import views

USER = "o/<uuid:org_code>/backups/<uuid:configuration_code>/users/<uuid:user_graph_id>/"

app_name = "backups"

urlpatterns = [
    path("o/<uuid:org_code>/", views.dashboard, name="dashboard"),
    path("o/<uuid:org_code>/backups/", views.backups, name="backups"),
    path("o/<uuid:org_code>/backups/runs/", views.runs_fragment, name="backup-runs"),
    path("o/<uuid:org_code>/backups/runs/<uuid:run_code>/", views.run_detail, name="backup-run"),
    path(
        "o/<uuid:org_code>/backups/<uuid:configuration_code>/start/",
        views.start_configuration_backup,
        name="start-configuration-backup",
    ),
    path(USER, views.user_history, name="backup-user-history"),
    path(USER + "start/", views.start_user_backup, name="start-user-backup"),
    path("o/<uuid:org_code>/tasks/", views.tasks, name="tasks"),
    path(
        "o/<uuid:org_code>/backups/runs/<uuid:run_code>/cancel/",
        views.cancel_run,
        name="backup-run-cancel",
    ),
]
