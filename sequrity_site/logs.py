"""Logging: request ids, structured JSON lines (``LOG_FORMAT=json``) or plain text (``LOG_FORMAT=text``).

Every HTTP request gets a request id (``sequrity_site.asgi`` sets it, from a sane incoming ``X-Request-ID`` or
a new one, and returns it as the ``X-Request-ID`` response header). It lives in a context variable, so every
log record made while serving the request carries it (``RequestContextFilter``), including the traceback of
an unexpected exception; an operator finds a client's failing request by the id the client received.
The access logger ``sequrity.access`` writes one line per request: request id, method, path, status,
latency, and under ``/control`` the session id and the key prefix (never the secret).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import traceback
import uuid

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

access_logger = logging.getLogger("sequrity.access")


def new_request_id(incoming: str | None = None) -> str:
    """The client's ``X-Request-ID`` when it looks like an id (so ids can be followed across services), else
    a new random one."""
    if incoming and _SANE_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return REQUEST_ID.get()


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` (or None) to every record, so formatters can use it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}


_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)  # ``json.dumps`` with these builds one per call
# the last whole second formatted, and its text: formatted once a second, not once a line
_second: tuple[int, str] = (-1, "")


def _utc_second(created: float) -> str:
    global _second
    whole = int(created)
    cached = _second
    if cached[0] != whole:
        cached = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return cached[1]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, extra fields, exc (traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": _utc_second(record.created) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            out["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return _ENCODER.encode(out)


class TextFormatter(logging.Formatter):
    """Plain text for development: time, level, logger, [request id], message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_") and v not in (None, "")
        )
        head = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}"
        line = f"{head} [{rid}] {record.getMessage()}" if rid else f"{head} {record.getMessage()}"
        if extras:
            line += f"  {extras}"
        if record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return line


def logging_config(*, fmt: str, level: str, access: bool) -> dict:
    """The ``LOGGING`` dict of the settings."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": "sequrity_site.logs.RequestContextFilter"}},
        "formatters": {
            "json": {"()": "sequrity_site.logs.JsonFormatter"},
            "text": {"()": "sequrity_site.logs.TextFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if fmt == "json" else "text",
                "filters": ["request"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # One line per request (INFO); LOG_REQUESTS=0 turns it off.
            "sequrity.access": {
                "handlers": ["console"],
                "level": "INFO" if access else "WARNING",
                "propagate": False,
            },
            # django.request logs 4xx as warnings; the access line already has them, keep the tracebacks (5xx).
            "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        },
    }
