"""Python's own functions and methods called on plain values (the str and datetime methods, the datetime
constructors): arguments unwrapped, results wrapped with the merged metas, errors made the program's.
"""

from __future__ import annotations

import re
from typing import Any

from ..values import V, mm
from .arguments import PY_ERRORS, metas_of, scalar_arg, wrap_result


def py_call(fn: Any, fname: str, guard: Any = None) -> Any:
    def impl(it: Any, args: list[V], kwargs: dict[str, V]) -> V:
        pa = [scalar_arg(it, a, fname) for a in args]
        pk = {k: scalar_arg(it, a, fname) for k, a in kwargs.items()}
        if guard is not None:
            guard(it, pa, pk)
        try:
            r = fn(*pa, **pk)
        except PY_ERRORS:
            raise
        except re.error as e:  # strptime('...', '%Y %Y'): a format the planner can fix
            raise ValueError(f"{fname}() format is invalid: {e.msg}") from None
        except Exception as e:  # anything else the datetime module raises is still the program's error
            raise ValueError(f"{fname}() failed ({type(e).__name__})") from None
        return wrap_result(it, r, mm(metas_of(it, args), metas_of(it, kwargs.values())))

    return impl


def py_method(name: str, guard: Any = None) -> Any:
    def impl(it: Any, recv: V, args: list[V], kwargs: dict[str, V]) -> V:
        pa = [it.plain(a) for a in args]
        pk = {k: it.plain(a) for k, a in kwargs.items()}
        if guard is not None:
            guard(it, recv.v, pa, pk)
        fn = getattr(type(recv.v), name)
        r = fn(recv.v, *pa, **pk)
        m = recv.m
        for a in args:
            m = mm(m, it.eff(a))
        for a in kwargs.values():
            m = mm(m, it.eff(a))
        return wrap_result(it, r, m)

    return impl


def attr_getter(name: str) -> Any:
    def getter(it: Any, recv: V) -> V:
        r = getattr(recv.v, name)
        return V(r, recv.m)

    return getter
