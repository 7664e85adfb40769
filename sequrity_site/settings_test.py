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

# The suite's own process keeps its usage-log journal (sessions.emit) in a directory of its own: a journal a
# killed run leaves behind is never published into another run's database. The uvicorn and Celery processes a
# test starts get LOG_SPOOL_DIR from it (tests/live.py).
if not os.environ.get("LOG_SPOOL_DIR"):
    LOG_SPOOL_DIR = BASE_DIR / "var" / f"spool-test-{os.getpid()}"  # noqa: F405
