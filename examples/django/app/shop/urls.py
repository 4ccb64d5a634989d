"""The shop example's URLs: /health (names the version) and / (counts the notes)."""

from django.urls import path
from notes import views

urlpatterns = [path("health", views.health), path("", views.index)]
