from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from backups import views as backups_views
from kodo import views
from organizations import views as organizations_views
from organizations.forms import EmailAuthenticationForm

urlpatterns = [
    path("", views.home, name="home"),
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
    path("o/<uuid:org_code>/", backups_views.dashboard, name="dashboard"),
    path("", include("organizations.urls")),
    path("", include("o365.urls")),
    path("", include("schedules.urls")),
    path("", include("backups.urls")),
]

handler500 = "kodo.views.server_error"
admin.site.site_header = "Kodo server administration"
admin.site.site_title = "Kodo"
