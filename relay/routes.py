"""The Control API's route table, framework-free.

A route is (endpoint type, provider segment or None, API suffix). ``resolve`` returns the effective provider
or None for a combination the spec does not list (which the view answers with 404).
"""

from __future__ import annotations

from dataclasses import dataclass

PROVIDERS = ("openai", "openrouter", "anthropic", "sequrity_azure")
API_BY_SUFFIX = {
    "chat/completions": "chat",
    "messages": "messages",
    "responses": "responses",
    "generate": "generate",
}

# api -> endpoint types -> (default provider, explicit providers)
_TABLE: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "chat": {
        t: ("openrouter", ("openai", "openrouter", "sequrity_azure"))
        for t in ("chat", "code", "agent", "lang-graph")
    },
    "messages": {t: ("anthropic", ("anthropic",)) for t in ("chat", "code", "agent", "lang-graph")},
    "responses": {t: ("openai", ("openai", "sequrity_azure")) for t in ("chat", "code", "agent")},
    "generate": {"policy-gen": ("openrouter", PROVIDERS)},
}


@dataclass(frozen=True, slots=True)
class Route:
    endpoint_type: str
    api: str  # chat | messages | responses | generate
    provider: str  # effective provider


def resolve(endpoint_type: str, provider: str | None, suffix: str) -> Route | None:
    api = API_BY_SUFFIX.get(suffix)
    if api is None:
        return None
    entry = _TABLE[api].get(endpoint_type)
    if entry is None:
        return None
    default, explicit = entry
    if provider is None:
        return Route(endpoint_type, api, default)
    if provider not in explicit:
        return None
    return Route(endpoint_type, api, provider)


def all_routes() -> list[dict[str, str]]:
    """Every POST route, for ``GET /control/``."""
    suffix_of = {v: k for k, v in API_BY_SUFFIX.items()}
    out = []
    for api, types in _TABLE.items():
        for endpoint_type, (_, explicit) in types.items():
            out.append({"method": "POST", "path": f"/control/{endpoint_type}/v1/{suffix_of[api]}"})
            for p in explicit:
                out.append({"method": "POST", "path": f"/control/{endpoint_type}/{p}/v1/{suffix_of[api]}"})
    out.append({"method": "POST", "path": "/control/v1/validate-headers"})
    out.append({"method": "GET", "path": "/control/health"})
    out.append({"method": "GET", "path": "/control/ready"})
    return out
