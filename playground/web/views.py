from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from playground.catalog.models import CatalogEntry


def home(request: HttpRequest) -> HttpResponse:
    entries = CatalogEntry.objects.filter(is_active=True)
    return render(request, "web/home.html", {"entries": entries})


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})
