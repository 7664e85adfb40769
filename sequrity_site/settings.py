"""Settings, all from the environment (django-environ).

Unset ``DATABASE_URL`` means a SQLite file in the project; unset ``CELERY_BROKER_URL`` means Celery tasks run
eagerly in-process, so ``make run`` works on a fresh machine with no services. Production sets both.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Variables already in the environment win over the file; ENV_FILE names another file (e.g. a production one).
environ.Env.read_env(os.environ.get("ENV_FILE") or BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for development).")
    SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Production behind a TLS-terminating proxy (README, "Production"); `manage.py check --deploy` is clean with
# the values `scripts/make_env.py --production` writes. SECURE_PROXY_SSL_HEADER names the header the proxy
# sets to "https" (e.g. X-Forwarded-Proto); only set it when the proxy always sets or strips that header.
_proxy_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
if _proxy_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^control/", r"^metrics$"]  # API clients and probes get no redirect
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apikeys",
    "sessions.apps.AgentSessionsConfig",
    "relay",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# The Control API (/control/...) is served by its own ASGI handler with only these (async) middlewares:
# it authenticates by bearer key, needs no cookies, sessions or CSRF, and every sync middleware would
# cost a thread hop per request (see sequrity_site/asgi.py).
RELAY_MIDDLEWARE: list[str] = []

ROOT_URLCONF = "sequrity_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "sequrity_site.wsgi.application"
ASGI_APPLICATION = "sequrity_site.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # A file, not memory, so that the uvicorn and Celery processes the tests start share the test database.
    # Named per test process, so concurrent test runs on one machine never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f"test_db.{os.getpid()}.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shared cache: Redis in production (CACHE_URL=redis://...), the database otherwise, so that every
# worker process sees the same key-lookup cache invalidations and session locks.
CACHES = {
    "default": env.cache("CACHE_URL", default="dbcache://django_cache"),
    # Relay session state (what continues a conversation on any worker); see relay/session_store.py.
    "relay_sessions": env.cache(
        "RELAY_SESSION_CACHE_URL", default=env.str("CACHE_URL", default="dbcache://relay_session_cache")
    ),
}
for _cache in CACHES.values():
    if _cache["BACKEND"].endswith("DatabaseCache"):
        _cache.setdefault("OPTIONS", {}).update({"MAX_ENTRIES": 10_000_000, "CULL_FREQUENCY": 10})

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "apikeys:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed, compressed files from `manage.py collectstatic` (part of the production path). Without it
        # the pages still work: the storage falls back to plain names served from static/ (and the system
        # check sequrity.W001 says to run collectstatic) instead of answering 500 everywhere.
        "BACKEND": "sequrity_site.storage.StaticStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
STATIC_COLLECTED = (Path(STATIC_ROOT) / "staticfiles.json").exists()
WHITENOISE_USE_FINDERS = DEBUG or not STATIC_COLLECTED
WHITENOISE_AUTOREFRESH = DEBUG

# Fernet keys (comma-separated, newest first) encrypting stored provider credentials; MultiFernet rotates.
FIELD_ENCRYPTION_KEY = env.list("FIELD_ENCRYPTION_KEY", default=[])
if not FIELD_ENCRYPTION_KEY and not DEBUG:
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set when DEBUG is off.")

# Celery: without a broker, run tasks eagerly in-process.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The broker is RabbitMQ in production (README, "Nothing is lost"): a task is acknowledged only after it ran,
# so a worker that dies (or loses the broker) mid-task has it redelivered at once to the next consumer; one
# message prefetched per process; the worker reconnects forever instead of exiting; the relay's publishes
# wait for the broker's confirm (a batch is removed from the relay's journal only once RabbitMQ has it).
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"confirm_publish": True} if CELERY_BROKER_URL.startswith(("amqp", "pyamqp")) else {}
)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_BEAT_SCHEDULE = {
    "prune-session-log": {"task": "sessions.tasks.prune_log", "schedule": 3600.0},
}

# Session/usage log (sessions app): raw events (usage, sessions and their steps) and hourly rollups are kept
# LOG_RETENTION_DAYS, daily rollups ROLLUP_RETENTION_DAYS. Credits: with CREDITS_ENFORCED the relay answers
# 402 to users without credit (balance cached at most CREDITS_CACHE_SECONDS, ≤ 1 s).
LOG_RETENTION_DAYS = env.int("LOG_RETENTION_DAYS", default=30)
ROLLUP_RETENTION_DAYS = env.int("ROLLUP_RETENTION_DAYS", default=400)
CREDITS_ENFORCED = env.bool("CREDITS_ENFORCED", default=False)
CREDITS_CACHE_SECONDS = env.float("CREDITS_CACHE_SECONDS", default=1.0)
# The policy editor's dry-run: one request replays recorded calls for at most this long (newest first).
POLICY_DRY_RUN_SECONDS = env.float("POLICY_DRY_RUN_SECONDS", default=3.0)

# Upstream providers (the relay).
RELAY_OPENAI_BASE_URL = env.str("RELAY_OPENAI_BASE_URL", default="https://api.openai.com/v1")
RELAY_OPENROUTER_BASE_URL = env.str("RELAY_OPENROUTER_BASE_URL", default="https://openrouter.ai/api/v1")
RELAY_ANTHROPIC_BASE_URL = env.str("RELAY_ANTHROPIC_BASE_URL", default="https://api.anthropic.com")
RELAY_SEQURITY_AZURE_BASE_URL = env.str("RELAY_SEQURITY_AZURE_BASE_URL", default="")
RELAY_UPSTREAM_TIMEOUT = env.float("RELAY_UPSTREAM_TIMEOUT", default=120.0)
# How long an authenticated key stays cached in-process; revocation also clears it through the shared cache.
RELAY_KEY_CACHE_SECONDS = env.float("RELAY_KEY_CACHE_SECONDS", default=1.0)
RELAY_SESSION_IDLE_SECONDS = env.int("RELAY_SESSION_IDLE_SECONDS", default=24 * 3600)
# While the database is unreachable, a key authenticated within this many seconds keeps working from the
# in-process cache (stale-while-error; it also bounds how late a revocation made just before an outage applies).
RELAY_KEY_STALE_SECONDS = env.float("RELAY_KEY_STALE_SECONDS", default=60.0)
# Lease of a session's lock (renewed while its request runs; a crashed request's lock lapses after it):
# 0 means the upstream timeout + 5 s. See relay/session_store.py.
RELAY_SESSION_LOCK_SECONDS = env.float("RELAY_SESSION_LOCK_SECONDS", default=0.0)
# Control API request bodies: at most RELAY_MAX_BODY_BYTES (413 beyond; long LLM histories are large),
# received within RELAY_BODY_READ_TIMEOUT seconds (408 otherwise). See sequrity_site/asgi.py.
RELAY_MAX_BODY_BYTES = env.int("RELAY_MAX_BODY_BYTES", default=16 * 1024 * 1024)
RELAY_BODY_READ_TIMEOUT = env.float("RELAY_BODY_READ_TIMEOUT", default=30.0)
# Dual-LLM programs run in a pool of worker processes per relay process (relay.interpreter.pool): a run is
# killed after RELAY_PROGRAM_TIMEOUT seconds (0: the interpreter's wall-time limit + 1 s) and a worker may grow
# by RELAY_PROGRAM_MEMORY_MB; RELAY_PROGRAM_WORKERS=0 runs programs in a thread instead (no hard bound).
RELAY_PROGRAM_WORKERS = env.int("RELAY_PROGRAM_WORKERS", default=2)
RELAY_PROGRAM_TIMEOUT = env.float("RELAY_PROGRAM_TIMEOUT", default=0.0)
RELAY_PROGRAM_MEMORY_MB = env.int("RELAY_PROGRAM_MEMORY_MB", default=1024)
LOG_SPOOL_DIR = env.path("LOG_SPOOL_DIR", default=BASE_DIR / "var" / "spool")

# The management API (/api/, apikeys/api/): personal access tokens (`Authorization: Bearer sqat-...`), JSON
# errors naming the field, paginated lists, throttles (429 + Retry-After) counted in the default cache:
# per token owner, per client address without a valid token (failed authentications count), and policy
# generations per user.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apikeys.api.common.AccessTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["apikeys.api.common.AnonThrottle", "apikeys.api.common.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_user": env.str("API_THROTTLE_USER", default="600/minute"),
        "api_anon": env.str("API_THROTTLE_ANON", default="60/minute"),
        "api_generate": env.str("API_THROTTLE_GENERATE", default="30/hour"),
    },
    "NUM_PROXIES": 0,  # client addresses are REMOTE_ADDR (uvicorn applies trusted X-Forwarded-For itself)
    "DEFAULT_PAGINATION_CLASS": "apikeys.api.common.Pagination",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apikeys.api.common.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sequrity Control management API",
    "DESCRIPTION": "Relay keys, sessions, usage and policies. Authenticate with a personal access token: "
    "`Authorization: Bearer sqat-...` (dashboard → API tokens, or `manage.py create_access_token`).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",  # Swagger UI and Redoc from drf-spectacular-sidecar's static files: no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apikeys.api.schema.add_error_responses",
    ],
}

# Logs (sequrity_site/logs.py): JSON lines by default in production, plain text with DEBUG; one access line
# per request (request id, session id, key prefix, status, latency) unless LOG_REQUESTS=0.
from .logs import logging_config  # noqa: E402

LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = logging_config(
    fmt=LOG_FORMAT,
    level=env.str("LOG_LEVEL", default="WARNING"),
    access=env.bool("LOG_REQUESTS", default=True),
)

# Prometheus metrics at /metrics (sequrity_site/metrics.py): off unless METRICS_ENABLED=1 or METRICS_TOKEN is
# set; with a token, scrapers must send `Authorization: Bearer <token>`. Several worker processes share
# their counters through PROMETHEUS_MULTIPROC_DIR (the production command sets and empties it).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=bool(METRICS_TOKEN))

# Readiness (/control/ready) waits at most this long for each dependency (database, broker, caches).
READINESS_TIMEOUT = env.float("READINESS_TIMEOUT", default=2.0)
# The dashboard shows an open session without activity for this long as idle.
SESSION_IDLE_DISPLAY_SECONDS = env.int("SESSION_IDLE_DISPLAY_SECONDS", default=15 * 60)
