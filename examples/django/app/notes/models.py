"""One model, so the release carries a migration of its own beside Django's contrib apps'."""

from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)
