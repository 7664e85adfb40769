"""WSGI entry point (management tooling only; the relay's streaming needs ASGI)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequrity_site.settings")

application = get_wsgi_application()
