"""Kodo's own pages (namespace `kodo`); the project's URL table is kodo/urls.py."""

from django.urls import path

from kodo import views

app_name = "kodo"

urlpatterns = [
    path("", views.home, name="home"),
]
