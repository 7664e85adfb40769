"""Prometheus metrics (``prometheus-client``), served at ``/metrics`` by ``sequrity_site.asgi``.

Off by default: ``METRICS_ENABLED=1``, or ``METRICS_TOKEN`` (then scrapers send ``Authorization: Bearer
<token>``; anything else gets 401). With several uvicorn worker processes set ``PROMETHEUS_MULTIPROC_DIR`` to
an empty directory before the server starts (the production command, ``sequrity_site.serve``, does): each
process writes its samples there and a scrape sums them over all processes. Without it (``make run``, one
process) each process only reports its own.

    sequrity_relay_requests_total{route, provider, arch, status}       Control API requests
    sequrity_relay_request_duration_seconds{route, provider, arch}     total latency (streams: until the end)
    sequrity_upstream_duration_seconds{provider}                       until the provider's answer (headers)
    sequrity_policy_verdicts_total{arch, verdict}                      allowed | denied_soft | denied_hard
    sequrity_guardrail_findings_total{guardrail, action}               e.g. pii_redaction / redacted
    sequrity_program_runs_limited_total                                dual-LLM runs ended by a resource limit
    sequrity_log_spool_events / sequrity_log_spool_bytes               usage-log events waiting in the spool
    sequrity_log_publish_failures_total                                batches spooled: the broker was down
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from pathlib import Path

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

# Metrics without labels write their sample file when they are defined, at import. Management commands that
# load the URLs (``check --deploy``, run by ``make prod`` before the server has prepared the directory) import
# this module too: the directory must exist (``sequrity_site.serve`` empties it before the workers start).
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REQUESTS = Counter(
    "sequrity_relay_requests",
    "Control API requests (by route, provider, architecture, status)",
    ["route", "provider", "arch", "status"],
)
LATENCY = Histogram(
    "sequrity_relay_request_duration_seconds",
    "Control API request latency, until the last byte of a stream",
    ["route", "provider", "arch"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_LATENCY = Histogram(
    "sequrity_upstream_duration_seconds",
    "Upstream LLM call latency, until the provider's answer (its headers for a stream)",
    ["provider"],
    buckets=LATENCY_BUCKETS,
)
VERDICTS = Counter("sequrity_policy_verdicts", "Policy verdicts on tool calls", ["arch", "verdict"])
GUARDRAIL_FINDINGS = Counter(
    "sequrity_guardrail_findings", "Guardrail findings by guardrail and action", ["guardrail", "action"]
)
PROGRAM_LIMITS = Counter("sequrity_program_runs_limited", "Dual-LLM program runs ended by a resource limit")
PUBLISH_FAILURES = Counter(
    "sequrity_log_publish_failures",
    "Usage-log batches that could not be published (broker down) and were spooled",
)


def verdict_label(verdict: str) -> str:
    v = str(verdict or "")
    if v.endswith("allowed"):
        return "allowed"
    if v.startswith("hard"):
        return "denied_hard"
    return "denied_soft"


_REQUEST_SERIES: dict[
    tuple[str, str, str, int], tuple
] = {}  # labelled children, looked up once per label set


def observe_request(*, route: str, provider: str, arch: str, status: int, seconds: float) -> None:
    key = (route, provider, arch, status)
    series = _REQUEST_SERIES.get(key)
    if series is None:
        series = _REQUEST_SERIES[key] = (
            REQUESTS.labels(route, provider, arch or "none", str(status)),
            LATENCY.labels(route, provider, arch or "none"),
        )
    series[0].inc()
    series[1].observe(seconds)


def observe_events(arch: str, events: list[dict]) -> None:
    """Verdicts and guardrail findings among a request's session steps (both architectures log the same)."""
    for ev in events:
        kind, data = ev.get("type"), ev.get("data") or {}
        if kind == "tool_call" and data.get("verdict"):
            VERDICTS.labels(arch or "none", verdict_label(data["verdict"])).inc()
        elif kind == "guardrail":
            if data.get("guardrail"):  # single-LLM: one finding per step
                GUARDRAIL_FINDINGS.labels(str(data["guardrail"]), str(data.get("action") or "")).inc()
            for f in data.get("findings") or []:  # dual-LLM: an outcome with its findings
                if isinstance(f, dict):
                    GUARDRAIL_FINDINGS.labels(
                        str(f.get("guardrail") or f.get("kind") or ""), str(f.get("action") or "")
                    ).inc()


def observe_call(call) -> None:
    """Everything a finished relay request (``relay.lifecycle.call.Call``) tells; never raises."""
    try:
        route = call.route
        arch = call.arch
        observe_request(
            route=f"{route.endpoint_type}:{route.api}",
            provider=route.provider,
            arch=arch,
            status=call.status,
            seconds=time.perf_counter() - call.started,
        )
        observe_events(arch, call.events)
    except Exception:  # noqa: BLE001 - metrics must never break a request
        logging.getLogger(__name__).debug("metrics failed", exc_info=True)


# ------------------------------------------------------------------------------------------ hooks


class _PublishFailureHandler(logging.Handler):
    """Counts the usage-log flusher's "broker unavailable" warnings (``sessions.emit``)."""

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("log broker unavailable"):
            PUBLISH_FAILURES.inc()


def _provider_of(url) -> str:
    from relay.providers import PROVIDERS, get_settings

    text = str(url)
    st = get_settings()
    for provider in PROVIDERS:
        base = st.base_url(provider)
        if base and text.startswith(base.rstrip("/")):
            return provider
    return "other"


async def _on_request(request) -> None:
    request.extensions["sequrity_started"] = time.perf_counter()


async def _on_response(response) -> None:
    started = response.request.extensions.get("sequrity_started")
    if started is not None:
        UPSTREAM_LATENCY.labels(_provider_of(response.request.url)).observe(time.perf_counter() - started)


_installed = False


def install() -> None:
    """Hook the upstream clients (httpx event hooks on every pooled client) and the log flusher; once."""
    global _installed
    if _installed:
        return
    _installed = True
    logging.getLogger("sessions.emit").addHandler(_PublishFailureHandler(logging.WARNING))
    try:
        from relay.providers import client as provider_client
    except ImportError:  # pragma: no cover
        return
    original = provider_client._new_client

    def new_client():
        client = original()
        client.event_hooks = {
            "request": [*client.event_hooks["request"], _on_request],
            "response": [*client.event_hooks["response"], _on_response],
        }
        return client

    provider_client._new_client = new_client


# ------------------------------------------------------------------------------------------ exposition


class SpoolCollector:
    """Usage-log events waiting in the spool (``LOG_SPOOL_DIR``): counted on disk at scrape time, so the
    figure covers every process on the machine."""

    def collect(self):
        directory = Path(getattr(settings, "LOG_SPOOL_DIR", settings.BASE_DIR / "var" / "spool"))
        events = size = 0
        try:
            for path in directory.glob("events-*"):
                try:
                    with path.open("rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                size += len(data)
                events += data.count(b"\n")
        except OSError:
            pass
        g = GaugeMetricFamily("sequrity_log_spool_events", "Usage-log events waiting in the local spool")
        g.add_metric([], events)
        yield g
        b = GaugeMetricFamily("sequrity_log_spool_bytes", "Size of the local usage-log spool")
        b.add_metric([], size)
        yield b


_registry: CollectorRegistry | None = None


def registry() -> CollectorRegistry:
    global _registry
    if _registry is None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)
        else:
            reg = REGISTRY
        reg.register(SpoolCollector())
        _registry = reg
    return _registry


def enabled() -> bool:
    return bool(getattr(settings, "METRICS_ENABLED", False))


def authorized(header: str) -> bool:
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return True
    return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())


async def asgi_endpoint(scope, receive, send) -> None:
    """``GET /metrics``: 404 when disabled, 401 without the token, else the text exposition format."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    if not enabled():
        status, ctype, body = 404, "text/plain", b"Not found\n"
    elif not authorized(headers.get("authorization", "")):
        status, ctype, body = 401, "text/plain", b"Unauthorized: send Authorization: Bearer <METRICS_TOKEN>\n"
    else:
        status, ctype = 200, CONTENT_TYPE_LATEST
        body = await asyncio.to_thread(generate_latest, registry())
    extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", ctype.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
