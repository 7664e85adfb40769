"""The dashboard's "API tokens" pages (personal access tokens of the management API), mounted at /tokens/."""

from django.urls import path

from . import token_views

app_name = "tokens"

urlpatterns = [
    path("", token_views.token_list, name="list"),
    path("<int:pk>/revoke/", token_views.token_revoke, name="revoke"),
]
