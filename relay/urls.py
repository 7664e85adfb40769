"""Routes under /control/. Unknown combinations fall through to a JSON 404."""

from django.urls import path, re_path

from . import views

SUFFIX = r"(?P<suffix>chat/completions|messages|responses|generate)"

urlpatterns = [
    path("", views.index, name="relay-index"),
    path("health", views.health, name="relay-health"),
    path("ready", views.ready, name="relay-ready"),
    path("v1/validate-headers", views.validate_headers_view, name="relay-validate-headers"),
    re_path(rf"^(?P<endpoint_type>[a-z-]+)/v1/{SUFFIX}$", views.api, name="relay-api-default"),
    re_path(rf"^(?P<endpoint_type>[a-z-]+)/(?P<provider>[a-z_]+)/v1/{SUFFIX}$", views.api, name="relay-api"),
    re_path(r"^(?P<rest>[\s\S]*)$", views.not_found),  # any path at all, newlines included: a JSON 404
]
