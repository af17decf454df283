from django.urls import path

from schedules import views

urlpatterns = [
    path("o/<uuid:org_code>/schedules/", views.schedules, name="schedules"),
]
