"""The minimal yardstick's one URL (`benchmarks.minimal_settings` only):

- `/bench/minimal/<pk>`: three columns of one task read by primary key with a raw cursor and
  returned as JSON, under `CommonMiddleware` alone: the cheapest useful Django view there is.
  `benchmarks.poll` divides every URL's requests/s by its requests/s (and by bare's, in the app)."""

from django.db import connection
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import path

# playground.generations' Task table; no model here, since no app is installed.
READ_TASK = "SELECT id, status, updated_at FROM generations_task WHERE id = %s"


def minimal_row(request: HttpRequest, pk: str) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute(READ_TASK, [pk])
        row = cursor.fetchone()
    if row is None:
        raise Http404
    return JsonResponse(dict(zip(("id", "status", "updated_at"), row, strict=True)))


urlpatterns = [path("bench/minimal/<str:pk>", minimal_row, name="bench-minimal")]
