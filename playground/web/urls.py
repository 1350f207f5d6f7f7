from django.contrib.auth import views as auth_views
from django.urls import path

from . import account_views, api_reference, views

urlpatterns = [
    path("", views.home, name="home"),
    path("play/<slug:slug>", views.play, name="play"),
    path("play/<slug:slug>/estimate", views.estimate, name="estimate"),
    path("tasks/<str:task_id>", views.task_page, name="task"),
    path("tasks/<str:task_id>/cancel", views.task_cancel, name="task-cancel"),
    path("tasks/<str:task_id>/thumb", views.task_thumb, name="task-thumb"),
    path("tasks/<str:task_id>/download.zip", views.task_zip, name="task-zip"),
    path("pick", views.pick_model, name="pick-model"),
    path("history", views.history, name="history"),
    path("compare", views.compare, name="compare"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/first/", views.first_account, name="first-account"),
    path("accounts/signup/", views.sign_up, name="signup"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(success_url="/accounts/password/done/"),
        name="password-change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password-change-done",
    ),
    path("demo/<str:token>", views.demo_entry, name="demo"),
    path("keys", account_views.keys_page, name="keys"),
    path("keys/new", account_views.create_key, name="key-create"),
    path("keys/<int:key_id>/<str:action>", account_views.key_action, name="key-action"),
    path("keys/audit.csv", account_views.audit_csv, name="audit-csv"),
    path("keys/webhook-secret/reveal", account_views.reveal_webhook_secret, name="webhook-secret-reveal"),
    path("keys/webhook-secret/rotate", account_views.rotate_webhook_secret, name="webhook-secret-rotate"),
    path("keys/upstream", account_views.save_upstream_key, name="upstream-save"),
    path("keys/upstream/test", account_views.test_upstream_key, name="upstream-test"),
    path("keys/upstream/delete", account_views.delete_upstream_key, name="upstream-delete"),
    path("keys/passes", account_views.create_demo_pass, name="pass-create"),
    path("keys/passes/<int:pass_id>/revoke", account_views.revoke_demo_pass, name="pass-revoke"),
    path("usage", account_views.usage, name="usage"),
    path("usage.csv", account_views.usage_csv, name="usage-csv"),
    path("docs/api", api_reference.api_reference, name="api-reference"),
    path("healthz", views.healthz, name="healthz"),
]
