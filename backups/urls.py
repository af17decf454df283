from django.urls import path

from backups import browse_views, download_views, my_views, restore_views, server_views, views

USER = "o/<uuid:org_code>/backups/<uuid:configuration_code>/users/<uuid:user_graph_id>/"

app_name = "backups"

urlpatterns = [
    path("o/<uuid:org_code>/", views.dashboard, name="dashboard"),
    path("o/<uuid:org_code>/backups/", views.backups, name="backups"),
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
    # a self-service user's own backups (backups/my_views.py); browse, download and restore
    # are the views below, scoped by backups.access.backup_data_required
    path("my/", my_views.my_backups, name="my-backups"),
    # the server administrator's overview (backups/server_views.py)
    path("server/overview/", server_views.server_overview, name="server-overview"),
    path("server/usage.csv", server_views.server_usage, name="server-usage"),
    # browse (backups/browse_views.py)
    path(USER + "browse/", browse_views.browse, name="browse"),
    path(
        USER + "files/<int:version_id>/versions/",
        browse_views.file_versions,
        name="file-versions",
    ),
    path(USER + "deleted/", browse_views.deleted_items, name="deleted-items"),
    path(USER + "search/", browse_views.user_search, name="user-search"),
    path("o/<uuid:org_code>/backups/search/", browse_views.search, name="search"),
    # download (backups/download_views.py)
    path(
        USER + "download/<int:version_id>/",
        download_views.download_version,
        name="download-version",
    ),
    path(USER + "download/", download_views.download_zip, name="download-zip"),
    # restore (backups/restore_views.py)
    path(USER + "restore/", restore_views.restore_new, name="restore-new"),
    path(
        "o/<uuid:org_code>/restores/<uuid:restore_code>/",
        restore_views.restore_detail,
        name="restore",
    ),
    path(
        "o/<uuid:org_code>/restores/<uuid:restore_code>/cancel/",
        restore_views.cancel_restore,
        name="restore-cancel",
    ),
    path(
        "o/<uuid:org_code>/restores/<uuid:restore_code>/results.csv",
        restore_views.restore_results,
        name="restore-results",
    ),
]
