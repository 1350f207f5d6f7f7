from django.urls import path

from . import views

urlpatterns = [
    path("tasks", views.tasks, name="api-tasks"),
    path("tasks/<str:task_id>", views.task_detail, name="api-task"),
    path("tasks/<str:task_id>/events", views.task_events, name="api-task-events"),
    path("tasks/<str:task_id>/cancel", views.task_cancel, name="api-task-cancel"),
    path("tasks/<str:task_id>/share", views.task_share, name="api-task-share"),
    path("batches", views.batches, name="api-batches"),
    path("batches/<str:batch_id>", views.batch_detail, name="api-batch"),
    path("models", views.models, name="api-models"),
    path("models/<str:slug>", views.model_detail, name="api-model"),
    path("openapi.json", views.openapi, name="api-openapi"),
]
