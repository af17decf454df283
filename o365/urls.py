from django.urls import path

from o365 import views

urlpatterns = [
    path("o/<uuid:org_code>/services/", views.services, name="services"),
]
