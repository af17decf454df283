"""The project's URL table: Django's authentication pages, the admin, and one include per app.

Each app's patterns live in its urls.py under a namespace named after the app
(`{% url 'o365:configurations' org.code %}`); the URL paths do not carry the app's name.
"""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from organizations import views as organizations_views
from organizations.forms import EmailAuthenticationForm

urlpatterns = [
    path("", include("kodo.site_urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            authentication_form=EmailAuthenticationForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path(
        "accounts/password_reset/",
        organizations_views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("organizations.urls")),
    path("", include("o365.urls")),
    path("", include("schedules.urls")),
    path("", include("backups.urls")),
]

handler500 = "kodo.views.server_error"
admin.site.site_header = "Kodo server administration"
admin.site.site_title = "Kodo"
