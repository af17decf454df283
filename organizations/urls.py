from django.urls import path

from organizations import (
    account_views,
    invitations_views,
    microsoft_signin_views,
    two_factor_views,
    views,
)

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
    # self-service and restore operators (organizations/views.py)
    path(
        "server/organizations/<uuid:org_code>/self-service/",
        views.server_organization_self_service,
        name="server-organization-self-service",
    ),
    path("o/<uuid:org_code>/settings/", views.organization_settings, name="settings"),
    path(
        "o/<uuid:org_code>/settings/self-service/",
        views.settings_user_permissions,
        name="settings-user-permissions",
    ),
    path(
        "o/<uuid:org_code>/settings/operators/",
        views.settings_operator_add,
        name="settings-operator-add",
    ),
    path(
        "o/<uuid:org_code>/settings/operators/<int:user_id>/remove/",
        views.settings_operator_remove,
        name="settings-operator-remove",
    ),
    path("o/<uuid:org_code>/users/invite/", invitations_views.invite_users, name="invite-users"),
    path(
        "o/<uuid:org_code>/users/<int:user_id>/invite/",
        invitations_views.invite_user,
        name="invite-user",
    ),
    # two-factor sign-in: the log-in steps, then the account page's
    path("accounts/login/code/", two_factor_views.login_code, name="two-factor-code"),
    path("accounts/login/set-up/", two_factor_views.login_setup, name="two-factor-login-setup"),
    path("account/two-factor/set-up/", two_factor_views.setup, name="two-factor-setup"),
    path(
        "account/two-factor/recovery-codes/",
        two_factor_views.recovery_codes,
        name="two-factor-recovery-codes",
    ),
    path(
        "account/two-factor/recovery-codes/new/",
        two_factor_views.new_recovery_codes,
        name="two-factor-new-recovery-codes",
    ),
    path(
        "account/two-factor/turn-off/",
        account_views.turn_off_two_factor,
        name="two-factor-turn-off",
    ),
]

# Sign in with Microsoft (organizations/microsoft_signin_views.py); the callback is the reply URL
# registered on the server's app (Register-KodoApp.ps1 -PortalUrl).
urlpatterns += [
    path("accounts/microsoft/", microsoft_signin_views.microsoft_signin, name="microsoft-signin"),
    path(
        "accounts/microsoft/callback/",
        microsoft_signin_views.microsoft_callback,
        name="microsoft-callback",
    ),
    path("account/microsoft/link/", microsoft_signin_views.microsoft_link, name="microsoft-link"),
    path(
        "account/microsoft/link/confirm/",
        microsoft_signin_views.microsoft_link_confirm,
        name="microsoft-link-confirm",
    ),
    path(
        "account/microsoft/unlink/",
        microsoft_signin_views.microsoft_unlink,
        name="microsoft-unlink",
    ),
]
