"""Whitelisted builtins, types, exception classes, the datetime subset and the methods of every value type.

Builtin implementations take ``(it, args, kwargs)`` and methods ``(it, recv, args, kwargs)``: ``it`` is the
running Interp, arguments are ``V``. Every result carries the merge of the metas it was computed from.
Python exceptions raised here (TypeError, ValueError, ...) become program exceptions at the call site.

The modules, from the bottom up: ``arguments`` (binding and wrapping), ``constructors`` and ``functions``
(the builtin callables), ``python_calls`` (Python's own functions on plain values), one module of methods
per value type and ``method_table`` (all of them by type), ``datetime_classes``, and ``names`` (the
predefined names of a program).
"""

from .arguments import bind, wrap_result
from .constructors import to_set
from .method_table import ATTRS, METHODS
from .names import _FUNCS, _TYPES, BUILTIN_NAMES, BUILTINS, TYPE_OF

__all__ = [
    "ATTRS",
    "BUILTINS",
    "BUILTIN_NAMES",
    "METHODS",
    "TYPE_OF",
    "_FUNCS",
    "_TYPES",
    "bind",
    "to_set",
    "wrap_result",
]
