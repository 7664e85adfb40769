"""Fast JSON helpers on orjson (a declared dependency).

``dumps`` returns compact UTF-8 bytes; ``dumps_str`` the same as ``str``; ``loads`` accepts bytes or str.
"""

from __future__ import annotations

import json as _std
from typing import Any

import orjson

_OPTS = orjson.OPT_NON_STR_KEYS


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, option=_OPTS)
    except TypeError:  # e.g. ints beyond 64 bit, exotic objects: fall back to the stdlib
        return _std.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None


def loads_object(text: str | None) -> dict[str, Any] | None:
    """Decode ``text`` as a JSON object; None when it is empty, invalid or not an object."""
    if not text:
        return None
    try:
        value = loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
