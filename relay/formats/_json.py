"""Fast JSON helpers: orjson when importable (it is in the venv via langsmith), else the stdlib.

``dumps`` returns compact UTF-8 bytes; ``dumps_str`` the same as ``str``; ``loads`` accepts bytes or str.
"""

from __future__ import annotations

import json as _std
from typing import Any

try:  # pragma: no cover - exercised implicitly
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

if _orjson is not None:
    _OPTS = _orjson.OPT_NON_STR_KEYS

    def dumps(obj: Any) -> bytes:
        try:
            return _orjson.dumps(obj, option=_OPTS)
        except TypeError:  # e.g. ints beyond 64 bit, exotic objects: fall back to the stdlib
            return _std.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()

    def dumps_str(obj: Any) -> str:
        return dumps(obj).decode()

    def loads(data: bytes | bytearray | memoryview | str) -> Any:
        try:
            return _orjson.loads(data)
        except _orjson.JSONDecodeError as exc:
            raise ValueError(str(exc)) from None

else:  # pragma: no cover

    def dumps(obj: Any) -> bytes:
        return _std.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()

    def dumps_str(obj: Any) -> str:
        return _std.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)

    def loads(data: bytes | bytearray | memoryview | str) -> Any:
        return _std.loads(data)


def loads_object(text: str | None) -> dict | None:
    """Decode ``text`` as a JSON object; None when it is empty, invalid or not an object."""
    if not text:
        return None
    try:
        value = loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
