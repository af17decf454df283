from django.urls import path

from organizations import views

app_name = "organizations"

urlpatterns = [
    path("server/organizations/", views.server_organizations, name="server-organizations"),
    path(
        "server/organizations/new/", views.server_organization_new, name="server-organization-new"
    ),
    path(
        "server/organizations/<uuid:org_code>/",
        views.server_organization,
        name="server-organization",
    ),
    path(
        "server/organizations/<uuid:org_code>/services/",
        views.server_organization_services,
        name="server-organization-services",
    ),
    path(
        "server/organizations/<uuid:org_code>/downloads/",
        views.server_organization_download_policy,
        name="server-organization-download-policy",
    ),
    path(
        "server/organizations/<uuid:org_code>/admins/<int:user_id>/invite/",
        views.server_organization_reinvite,
        name="server-organization-reinvite",
    ),
    path("server/audit/", views.server_audit_log, name="server-audit-log"),
    path("o/<uuid:org_code>/audit/", views.audit_log, name="audit-log"),
]
