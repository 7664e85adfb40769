"""Settings for the test suite (``make test``; pyproject's ``DJANGO_SETTINGS_MODULE``): the real settings, minus
what only costs time in tests. The uvicorn and Celery processes the tests start inherit this module through
``DJANGO_SETTINGS_MODULE``, so they hash passwords the same (fast) way."""

import os

from .settings import *  # noqa: F403

# PBKDF2 with 1,000,000 iterations costs ~0.3 s per user made or login; tests make hundreds.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# One line per request is for operators; the suite makes thousands (a test that reads them sets LOG_REQUESTS).
if not os.environ.get("LOG_REQUESTS"):
    LOGGING["loggers"]["sequrity.access"]["level"] = "WARNING"  # noqa: F405
