"""The project's URL table: Django's authentication pages, the admin, and one include per app.

Each app's patterns live in its urls.py under a namespace named after the app
(`{% url 'o365:configurations' org.code %}`); the URL paths do not carry the app's name.
"""

from django.contrib import admin
from django.urls import include, path

from organizations import account_views, two_factor_views
from organizations import views as organizations_views

urlpatterns = [
    path("", include("kodo.site_urls")),
    # Kodo's log in: the password, then a two-factor code when the account needs one.
    path("accounts/login/", two_factor_views.LoginView.as_view(), name="login"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        two_factor_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("account/", account_views.account, name="account"),
    path(
        "accounts/password_reset/",
        organizations_views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/login/", two_factor_views.admin_login),
    path("admin/", admin.site.urls),
    path("", include("organizations.urls")),
    path("", include("o365.urls")),
    path("", include("schedules.urls")),
    path("", include("backups.urls")),
]

handler500 = "kodo.views.server_error"
admin.site.site_header = "Kodo server administration"
admin.site.site_title = "Kodo"
