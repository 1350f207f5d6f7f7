"""The app's own URLs plus two yardsticks, through the same middleware:

- `/bench/row/<pk>`: the cheapest useful Django view, three columns of one row read by primary key
  (`values().first()`) and returned as JSON; the poll costs are divided by its requests/s;
- `/bench/object/<pk>`: the everyday version, the whole row as a model instance
  (`get_object_or_404`), for scale;
- `/bench/signed-in/<pk>`: bare behind `login_required`: the floor of any page that needs the
  session (Django loads the session and the user, two queries, before the view runs).

Only `benchmarks.settings` loads this URLconf, so production never serves them."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path

from playground.generations.models import Task
from playground.urls import handler400, handler404, handler500, urlpatterns  # noqa: F401


def bare_row(request: HttpRequest, pk: str) -> JsonResponse:
    row = Task.objects.filter(pk=pk).values("id", "status", "updated_at").first()
    if row is None:
        raise Http404
    return JsonResponse(row)


def bare_object(request: HttpRequest, pk: str) -> JsonResponse:
    task = get_object_or_404(Task, pk=pk)
    return JsonResponse({"id": task.pk, "status": task.status, "updated_at": task.updated_at})


urlpatterns = [
    path("bench/row/<str:pk>", bare_row, name="bench-row"),
    path("bench/object/<str:pk>", bare_object, name="bench-object"),
    path("bench/signed-in/<str:pk>", login_required(bare_row), name="bench-signed-in"),
    *urlpatterns,
]
