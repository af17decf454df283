from django.urls import path

from o365 import server_views, views

CONFIGURATION = "o/<uuid:org_code>/services/office365/configuration/"
USERS = "o/<uuid:org_code>/services/office365/users/"

app_name = "o365"

urlpatterns = [
    path("server/clouds/", server_views.server_clouds, name="server-clouds"),
    path("server/clouds/new/", server_views.server_cloud_new, name="server-cloud-new"),
    path("server/clouds/<uuid:cloud_code>/", server_views.server_cloud, name="server-cloud"),
    path(
        "server/clouds/<uuid:cloud_code>/delete/",
        server_views.server_cloud_delete,
        name="server-cloud-delete",
    ),
    path("o/<uuid:org_code>/users/", views.organization_users, name="organization-users"),
    path("o/<uuid:org_code>/services/", views.services, name="services"),
    path("o/<uuid:org_code>/services/office365/", views.office365, name="office365"),
    path(CONFIGURATION, views.configurations, name="configurations"),
    path(CONFIGURATION + "new/", views.configuration_new, name="configuration-new"),
    path(
        CONFIGURATION + "<uuid:configuration_code>/",
        views.configuration_edit,
        name="configuration-edit",
    ),
    path(
        CONFIGURATION + "<uuid:configuration_code>/delete/",
        views.configuration_delete,
        name="configuration-delete",
    ),
    path(
        CONFIGURATION + "<uuid:configuration_code>/test/",
        views.configuration_test,
        name="configuration-test",
    ),
    path(USERS, views.configuration_users, name="configuration-users"),
    path(
        USERS + "<uuid:configuration_code>/import/", views.directory_import, name="directory-import"
    ),
    path(USERS + "<uuid:configuration_code>/sync/", views.directory_sync, name="directory-sync"),
    path(
        USERS + "<uuid:configuration_code>/jobs/<uuid:job_code>/",
        views.directory_job,
        name="directory-job",
    ),
    path(
        USERS + "<uuid:configuration_code>/auto-sync/",
        views.directory_auto_sync,
        name="directory-auto-sync",
    ),
]
