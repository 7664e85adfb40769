"""Key versions: every saved configuration is kept (who, when, how) and two versions can be diffed; an old one is
restored as a new version (``services.do_revert_to_version``), so history is never rewritten.

``record_version`` is called by ``services`` inside the transaction of the save itself, so a key never holds a
configuration that no version describes.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max

from .models import ApiKey, KeyVersion, VersionSource

DOCUMENT_ORDER = ("policy", "features", "config")


def _same_configuration(version: KeyVersion | None, key: ApiKey) -> bool:
    return version is not None and (version.arch, version.features, version.policy, version.config) == (
        key.arch,
        key.features,
        key.policy,
        key.config,
    )


def record_version(
    *,
    key: ApiKey,
    saved_by=None,
    source: str = VersionSource.DASHBOARD,
    reverted_from: int | None = None,
    force: bool = False,
) -> KeyVersion:
    """Keep the key's configuration (as just saved) as its next version and make it current.

    A save that changes nothing in the configuration (a rename, the session-log level) keeps the current
    version instead of adding an identical one, unless ``force`` (a revert is always a visible step).
    """
    with transaction.atomic():
        ApiKey.objects.select_for_update().filter(pk=key.pk).values("pk").first()  # serialise numbering
        current = (
            KeyVersion.objects.filter(pk=key.current_version_id).first() if key.current_version_id else None
        )
        if not force and _same_configuration(current, key):
            return current
        last = KeyVersion.objects.filter(api_key=key).aggregate(n=Max("number"))["n"] or 0
        version = KeyVersion.objects.create(
            api_key=key,
            number=last + 1,
            arch=key.arch,
            features=key.features,
            policy=key.policy,
            config=key.config,
            saved_by=saved_by if saved_by is not None else key.user,
            source=source,
            reverted_from=reverted_from,
        )
        ApiKey.objects.filter(pk=key.pk).update(current_version=version)
        key.current_version = version
    return version


def versions_of(key: ApiKey):
    return KeyVersion.objects.filter(api_key=key).select_related("saved_by").order_by("-number")


def version_of(key: ApiKey, number) -> KeyVersion | None:
    try:
        number = int(number)
    except (TypeError, ValueError):
        return None
    return KeyVersion.objects.filter(api_key=key, number=number).select_related("saved_by").first()


def _json_lines(value) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def version_text(version: KeyVersion) -> list[str]:
    """A version as lines a person can diff: the policy code as written, then each document as indented JSON."""
    policy = dict(version.policy or {})
    codes = dict(policy.pop("codes", None) or {})
    code = codes.pop("code", "") or ""
    lines = [f"architecture: {version.arch}", f"# policy code ({codes.get('language') or 'sqrt'})"]
    lines += code.splitlines() or ["(empty)"]
    lines += ["# policy settings", *_json_lines({**policy, "codes": codes} if codes else policy)]
    lines += ["# features", *_json_lines(version.features or {})]
    lines += ["# config", *_json_lines(version.config or {})]
    return lines


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "remove", "context" or "hunk"
    text: str


def diff_versions(old: KeyVersion, new: KeyVersion, context: int = 3) -> list[DiffLine]:
    """A unified diff (``difflib``) of two versions, each line classified for rendering."""
    out = []
    for line in difflib.unified_diff(
        version_text(old), version_text(new), f"v{old.number}", f"v{new.number}", n=context, lineterm=""
    ):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "remove"
        else:
            kind = "context"
        out.append(DiffLine(kind, line))
    return out
