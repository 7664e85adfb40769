"""The Celery application. Without ``CELERY_BROKER_URL`` tasks run eagerly in-process (see settings)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequrity_site.settings")

app = Celery("sequrity_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
