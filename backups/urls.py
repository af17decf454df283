from django.urls import path

from backups import views

urlpatterns = [
    path("o/<uuid:org_code>/backups/", views.backups, name="backups"),
]
