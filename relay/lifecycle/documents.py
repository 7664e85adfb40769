"""The three header documents of a request (``X-Features``, ``X-Policy``, ``X-Config``), parsed and checked."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from pydantic import BaseModel

from ..header_documents import ConfigHeader, DocumentError, FeaturesHeader, PolicyHeader, parse_document
from ..sqrt import PolicyCompileError, compile_policy
from .call import RelayError

HEADER_KEYS = (("features", "HTTP_X_FEATURES"), ("policy", "HTTP_X_POLICY"), ("config", "HTTP_X_CONFIG"))


@dataclass(frozen=True, slots=True)
class HeaderDocuments:
    features: FeaturesHeader | None
    policy: PolicyHeader | None
    config: ConfigHeader | None
    raw: tuple[str | None, ...]  # the headers as sent: what the resolved configuration is memoised by


def parse_header_documents(request: HttpRequest) -> HeaderDocuments:
    """Parse X-Features / X-Policy / X-Config (400 naming the header and field; SQRT compile errors too)."""
    raw = tuple(request.META.get(key) for _, key in HEADER_KEYS)
    parsed: dict[str, BaseModel | None] = {}
    for (kind, _), text in zip(HEADER_KEYS, raw, strict=True):
        try:
            parsed[kind] = None if text is None else parse_document(kind, text)
        except DocumentError as exc:
            raise RelayError(400, str(exc), "bad_request") from None
    features, policy, config = parsed["features"], parsed["policy"], parsed["config"]
    assert isinstance(features, FeaturesHeader | None) and isinstance(policy, PolicyHeader | None)
    assert isinstance(config, ConfigHeader | None)
    if policy is not None and policy.codes is not None and policy.codes.code.strip():
        try:
            compile_policy(policy.codes.code, policy.codes.language)
        except PolicyCompileError as exc:
            raise RelayError(400, f"Invalid X-Policy header: codes.code: {exc}", "bad_request") from None
    return HeaderDocuments(features, policy, config, raw)
