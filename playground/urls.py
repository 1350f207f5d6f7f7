from django.contrib import admin
from django.urls import include, path

from playground.access.signin import AdminSignInForm
from playground.api import views as api_views

# The admin's sign-in is throttled like ours (playground/access/signin.py).
admin.site.login_form = AdminSignInForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("playground.api.urls")),
    path("files/<str:task_id>/<str:name>", api_views.task_file, name="task-file"),
    path("inputs/<str:input_id>/<str:name>", api_views.input_file, name="input-file"),
    path("", include("playground.web.urls")),
]

handler400 = "playground.api.errors.handler400"
handler403 = "playground.api.errors.handler403"
handler404 = "playground.api.errors.handler404"
handler500 = "playground.api.errors.handler500"
