"""Site routes: the dashboard, accounts, the admin console, the management API under /api/ and the Control API
under /control/."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from relay import views as relay_views

urlpatterns = [
    # The Control API first: it is the hot path, and Django tries the patterns in order.
    path("control", relay_views.index),
    path("control/", include("relay.urls")),
    path("", RedirectView.as_view(pattern_name="apikeys:list", permanent=False), name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("apikeys.account_urls")),
    path("keys/", include("apikeys.urls")),
    path("dashboard/", include("sessions.urls")),
    path("tokens/", include("apikeys.token_urls")),
    path("api/", include("apikeys.api.urls")),
]

handler500 = "relay.views.server_error"
