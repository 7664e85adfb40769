"""Dashboard pages (namespace "dashboard", mounted at /dashboard/)."""

from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("sessions/", views.session_list, name="sessions"),
    path("sessions/live/", views.session_list_live, name="sessions_live"),
    path("sessions/<uuid:session_id>/", views.session_detail, name="session_detail"),
    path("keys/<int:pk>/", views.key_usage, name="key_usage"),
    path("credits/", views.credits_page, name="credits"),
    path("export/<str:what>.<str:fmt>", views.export, name="export"),
]
