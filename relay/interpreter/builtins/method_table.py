"""Every value type's methods and attributes, by type, as the evaluator looks them up.

Methods take ``(it, recv, args, kwargs)``, attribute getters ``(it, recv)``.
"""

from __future__ import annotations

from typing import Any

from ..values import BoundMethod, ExcValue, VDict, VList, VSet
from .datetime_methods import DATETIME_ATTRS, DATETIME_METHODS
from .dict_methods import DICT_METHODS
from .list_methods import LIST_METHODS, TUPLE_METHODS
from .scalar_methods import EXCEPTION_ATTRS, FLOAT_METHODS, INT_METHODS, RANGE_ATTRS, RANGE_METHODS
from .set_methods import SET_METHODS
from .str_methods import STR_METHODS

METHODS: dict[type, dict[str, Any]] = {
    str: STR_METHODS,
    VList: LIST_METHODS,
    tuple: TUPLE_METHODS,
    VDict: DICT_METHODS,
    VSet: SET_METHODS,
    range: RANGE_METHODS,
    float: FLOAT_METHODS,
    int: INT_METHODS,
    **DATETIME_METHODS,
}

ATTRS: dict[type, dict[str, Any]] = {
    **DATETIME_ATTRS,
    range: RANGE_ATTRS,
    ExcValue: EXCEPTION_ATTRS,
}


def unbound_methods(t: type) -> dict[str, Any]:
    """A type's methods as reached through the type (``str.upper``), the receiver still to come."""
    return {n: BoundMethod(n, None, impl) for n, impl in METHODS[t].items()}
