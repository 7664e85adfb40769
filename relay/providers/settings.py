"""Upstream configuration as plain data (the Django shell fills it from settings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

PROVIDERS = ("openai", "openrouter", "anthropic", "sequrity_azure")
PATH_KINDS = ("chat", "messages", "responses")

# provider -> path kind -> path appended to the base URL
_PATHS: dict[str, dict[str, str]] = {
    "openai": {"chat": "/chat/completions", "responses": "/responses"},
    "openrouter": {"chat": "/chat/completions"},
    "anthropic": {"messages": "/v1/messages"},
    "sequrity_azure": {"chat": "/chat/completions", "responses": "/responses"},
}

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEFAULT_TIMEOUT = 300.0
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    openrouter_base_url: str = DEFAULT_OPENROUTER_BASE_URL
    anthropic_base_url: str = DEFAULT_ANTHROPIC_BASE_URL
    sequrity_azure_base_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    _urls: dict[tuple[str, str], str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _httpx_timeout: list[httpx.Timeout] = field(default_factory=list, init=False, repr=False, compare=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | Any) -> UpstreamSettings:
        """Build from Django-style names (``RELAY_OPENAI_BASE_URL``, …, ``RELAY_UPSTREAM_TIMEOUT``).

        ``values`` may be a mapping or any object with attributes (``django.conf.settings``); missing or
        empty values take the defaults.
        """

        def get(name: str) -> Any:
            if isinstance(values, Mapping):
                return values.get(name)
            return getattr(values, name, None)

        timeout = get("RELAY_UPSTREAM_TIMEOUT")
        return cls(
            openai_base_url=get("RELAY_OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL,
            openrouter_base_url=get("RELAY_OPENROUTER_BASE_URL") or DEFAULT_OPENROUTER_BASE_URL,
            anthropic_base_url=get("RELAY_ANTHROPIC_BASE_URL") or DEFAULT_ANTHROPIC_BASE_URL,
            sequrity_azure_base_url=get("RELAY_SEQURITY_AZURE_BASE_URL") or None,
            timeout=float(timeout) if timeout not in (None, "") else DEFAULT_TIMEOUT,
        )

    def base_url(self, provider: str) -> str | None:
        return {
            "openai": self.openai_base_url,
            "openrouter": self.openrouter_base_url,
            "anthropic": self.anthropic_base_url,
            "sequrity_azure": self.sequrity_azure_base_url,
        }.get(provider)

    def url(self, provider: str, path_kind: str) -> str:
        """Full endpoint URL; ValueError for an unknown provider/path combination, or an unset base URL."""
        key = (provider, path_kind)
        cached = self._urls.get(key)
        if cached is not None:
            return cached
        paths = _PATHS.get(provider)
        if paths is None:
            raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
        path = paths.get(path_kind)
        if path is None:
            raise ValueError(f"provider {provider!r} does not serve the {path_kind!r} API")
        base = self.base_url(provider)
        if not base:
            raise ValueError(f"no base URL configured for provider {provider!r}")
        base, _, query = base.partition("?")
        url = base.rstrip("/") + path + (f"?{query}" if query else "")
        self._urls[key] = url
        return url

    @property
    def httpx_timeout(self) -> httpx.Timeout:
        if not self._httpx_timeout:
            self._httpx_timeout.append(httpx.Timeout(self.timeout, connect=CONNECT_TIMEOUT))
        return self._httpx_timeout[0]


_current = UpstreamSettings()


def configure(settings: UpstreamSettings) -> None:
    """Install the process-wide settings (call at startup, or in tests)."""
    global _current
    _current = settings


def get_settings() -> UpstreamSettings:
    return _current
