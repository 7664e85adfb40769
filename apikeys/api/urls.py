"""Routes of the management API, mounted at /api/. The trailing slash is optional (see ``common.not_found``)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from sessions.api import SessionViewSet, UsageView

from .common import not_found
from .keys import KeyViewSet
from .policies import GeneratePolicyView, ValidatePolicyView
from .policy_diagnostics import PolicyDiagnosticsView

router = SimpleRouter()
router.register("keys", KeyViewSet, basename="key")
router.register("sessions", SessionViewSet, basename="session")

v1 = [
    *router.urls,
    path("usage/", UsageView.as_view(), name="usage"),
    path("policies/validate/", ValidatePolicyView.as_view(), name="policy-validate"),
    path("policies/generate/", GeneratePolicyView.as_view(), name="policy-generate"),
    path("policies/diagnostics/", PolicyDiagnosticsView.as_view(), name="policy-diagnostics"),
]

app_name = "api"

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    re_path(r"", not_found),  # JSON 404s; a path without its trailing slash is served as if it had it
]
