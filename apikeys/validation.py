"""Validation of a key's three documents, shared by the dashboard form, the commands and the admin.

Documents are checked against the header models (``relay.header_documents``) and the SQRT policy is compiled, so a
key can never store what a request header would be refused for. Errors name the document and the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.config import ARCHS
from relay.header_documents import DocumentError, dump_document, parse_document


@dataclass
class DocumentsInvalid(Exception):
    """``errors`` maps a document name (features/policy/config/arch) to its messages."""

    errors: dict[str, list[str]]

    def __str__(self) -> str:
        return "; ".join(f"{doc}: {msg}" for doc, msgs in self.errors.items() for msg in msgs)


def compile_policy_document(policy: dict) -> str | None:
    """Compile the SQRT/Cedar code of a policy document; returns an error message or None."""
    codes = policy.get("codes") or {}
    code = codes.get("code") or ""
    if not code.strip():
        return None
    from relay.sqrt import PolicyCompileError, compile_policy
    from relay.sqrt.diagnostics import MAX_POLICY_CHARS, diagnose

    language = codes.get("language") or "sqrt"
    if len(code) > MAX_POLICY_CHARS:
        return f"codes.code: the policy is too long ({len(code)} characters; at most {MAX_POLICY_CHARS})"
    try:
        compile_policy(code, language)
    except PolicyCompileError as exc:
        message = f"codes.code: {exc}"
        # The editor's reading of the same error: where it really is (a missing ';' is reported where it is
        # missing, not at the next token) and what would fit there, in words for people.
        found = diagnose(code, language)
        if found and (found[0].line, found[0].column) != (exc.line, exc.column):
            message += f" ({found[0].message.rstrip('.')}: line {found[0].line}, column {found[0].column}.)"
        return message
    return None


def validate_documents(arch: str, features, policy, config) -> dict[str, dict]:
    """Parse and normalise documents given as JSON text or dicts; raise :class:`DocumentsInvalid`."""
    errors: dict[str, list[str]] = {}
    if arch not in ARCHS:
        errors["arch"] = [f"unknown preset {arch!r}; expected one of: {', '.join(ARCHS)}"]
    parsed: dict[str, dict] = {}
    for kind, raw in (("features", features), ("policy", policy), ("config", config)):
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raw = {}
        try:
            parsed[kind] = dump_document(parse_document(kind, raw))
        except DocumentError as exc:
            errors[kind] = exc.errors
    if "policy" in parsed:
        message = compile_policy_document(parsed["policy"])
        if message:
            errors["policy"] = [message]
    if "features" in parsed and arch in ARCHS:
        declared = parsed["features"].get("agent_arch")
        if declared and declared != arch:
            errors.setdefault("features", []).append(
                f"agent_arch: {declared!r} contradicts the key's architecture {arch!r}"
            )
        parsed["features"]["agent_arch"] = arch
    if errors:
        raise DocumentsInvalid(errors)
    return parsed
