"""Key pages, mounted at /keys/ (namespace "apikeys")."""

from django.urls import path

from . import dryrun_views, policy_editor_views, views

app_name = "apikeys"

urlpatterns = [
    path("", views.key_list, name="list"),
    path("new/", views.key_create, name="create"),
    path("<int:pk>/created/", views.key_created, name="created"),
    path("<int:pk>/configure/", views.key_configure, name="configure"),
    path("<int:pk>/revoke/", views.key_revoke, name="revoke"),
    path("<int:pk>/generate-policy/", views.key_generate_policy, name="generate-policy"),
    path("<int:pk>/dry-run/", dryrun_views.key_dry_run, name="dry-run"),
    path("<int:pk>/versions/", dryrun_views.key_versions, name="versions"),
    path("<int:pk>/versions/<int:number>/revert/", dryrun_views.key_revert, name="revert"),
    path("<int:pk>/policy-diagnostics/", policy_editor_views.policy_diagnostics, name="policy-diagnostics"),
    path("<int:pk>/policy-vocabulary/", policy_editor_views.policy_vocabulary, name="policy-vocabulary"),
]
