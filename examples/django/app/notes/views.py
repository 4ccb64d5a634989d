"""/health answers without the database (a health gate must not wait on a table lock); / reads the notes."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from notes.models import Note


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "version": settings.VERSION})


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"shop {settings.VERSION}: {Note.objects.count()} notes\n", content_type="text/plain")
