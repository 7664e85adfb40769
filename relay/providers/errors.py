"""One exception for everything that goes wrong upstream, already mapped to the status we answer with."""

from __future__ import annotations

from typing import Any

from ..formats._json import loads
from ..formats.model import error_body

PROVIDER_LABELS = {
    "openai": "OpenAI",
    "openrouter": "OpenRouter",
    "anthropic": "Anthropic",
    "sequrity_azure": "Sequrity Azure",
}


class UpstreamError(Exception):
    """An upstream failure mapped to our answer (control-api §16.2).

    ``status``: upstream 4xx → the same status; 429 → 429 (``retry_after`` = its Retry-After header);
    5xx, a bad answer, or a connection failure → 502; timeout → 504.
    ``kind``: ``client_error`` | ``rate_limited`` | ``server_error`` | ``bad_response`` | ``connection`` |
    ``timeout`` | ``config``. ``message`` names the provider and carries the provider's own message.
    """

    def __init__(
        self,
        status: int,
        message: str,
        retry_after: str | None = None,
        kind: str = "server_error",
        *,
        provider: str | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.kind = kind
        self.provider = provider
        self.upstream_status = upstream_status

    def body(self, api: str = "chat") -> dict[str, Any]:
        """The JSON error body for our client (``formats.error_body``)."""
        code = {"rate_limited": "rate_limit_exceeded", "timeout": "upstream_timeout"}.get(
            self.kind, "upstream_error"
        )
        return error_body(self.status, self.message, api, code=code)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": self.retry_after} if self.retry_after else {}

    def __repr__(self) -> str:
        return f"UpstreamError({self.status}, {self.message!r}, kind={self.kind!r})"


def label(provider: str) -> str:
    return PROVIDER_LABELS.get(provider, provider)


def provider_message(content: bytes, limit: int = 500) -> str:
    """The human message inside a provider's error body (OpenAI / OpenRouter / Anthropic / Azure shapes)."""
    text = content.decode("utf-8", "replace").strip()
    try:
        obj: Any = loads(content) if content else None
    except ValueError:
        obj = None
    msg: Any = None
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict):
            msg = err.get("message") or err.get("code") or err.get("type")
            raw = (err.get("metadata") or {}).get("raw") if isinstance(err.get("metadata"), dict) else None
            if raw and isinstance(raw, str) and raw not in str(msg):
                msg = f"{msg} ({raw[:200]})"
        elif isinstance(err, str):
            msg = err
        if msg is None:
            msg = obj.get("detail") or obj.get("message")
    if msg is None:
        msg = text or "(empty body)"
    msg = str(msg)
    return str(msg) if len(msg) <= limit else msg[:limit] + "…"


def from_response(provider: str, status: int, content: bytes, retry_after: str | None) -> UpstreamError:
    name = label(provider)
    msg = provider_message(content)
    if status == 429:
        return UpstreamError(
            429,
            f"{name} rate limit (429): {msg}",
            retry_after,
            "rate_limited",
            provider=provider,
            upstream_status=status,
        )
    if 400 <= status < 500:
        return UpstreamError(
            status,
            f"{name} rejected the request ({status}): {msg}",
            None,
            "client_error",
            provider=provider,
            upstream_status=status,
        )
    return UpstreamError(
        502,
        f"{name} upstream error ({status}): {msg}",
        None,
        "server_error",
        provider=provider,
        upstream_status=status,
    )
