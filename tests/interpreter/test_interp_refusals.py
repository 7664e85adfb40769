"""Everything outside the subset is refused before (or instead of) running, naming construct and line."""

import pytest
from interp_helpers import FakeHost, run

REFUSED = [
    ("import os", "import"),
    ("from datetime import datetime", "import"),
    ("def f():\n    pass", "def"),
    ("async def f():\n    pass", "async def"),
    ("f = lambda x: x", "lambda"),
    ("class A:\n    pass", "class"),
    ("while True:\n    pass", "while"),
    ("global x", "global"),
    ("x = 1\ndef g():\n    nonlocal x", "def"),
    ("with open('f') as fh:\n    pass", "with"),
    ("x = [(yield)]", "yield"),
    ("x = await y", "await"),
    ("match x:\n    case 1:\n        pass", "match"),
    ("if (n := 10) > 5:\n    pass", ":="),
    ("return 5", "return"),
    ("eval('1')", "'eval'"),
    ("exec('x = 1')", "'exec'"),
    ("open('/etc/passwd')", "'open'"),
    ("__import__('os')", "__import__"),
    ("getattr('', 'upper')", "'getattr'"),
    ("globals()", "'globals'"),
    ("locals()", "'locals'"),
    ("vars()", "'vars'"),
    ("compile('1', 'f', 'eval')", "'compile'"),
    ("x = ''.__class__", "__class__"),
    ("x = [].__class__.__mro__", "private attribute"),
    ("x = (1).__add__(2)", "__add__"),
    ("x = 'a'._private", "_private"),
    ("x = __builtins__", "__builtins__"),
    ("d = {}\nd.attr = 1", "assigning"),
    ("x = b'bytes'", "bytes"),
    ("x = 1j", "complex"),
    ("x = ...", "ellipsis"),
    ("try:\n    pass\nexcept* ValueError:\n    pass", "except*"),
    ("x = [i async for i in y]", "async"),
    ("x = 1\ny = x\nz = id(y)", "'id'"),
    ("h = hash('a')", "'hash'"),
    ("it = iter([1])", "'iter'"),
]


@pytest.mark.parametrize("src,word", REFUSED, ids=[s.split("\n")[0][:30] for s, _ in REFUSED])
def test_refused_before_running(src, word):
    host = FakeHost()
    r = run("search('first')\n" + src, host=host)
    assert r.status == "error"
    assert r.error.kind in ("refused", "syntax"), r.error
    assert word in r.error.message, r.error.message
    assert r.error.lineno is not None and r.error.lineno >= 2
    assert f"line {r.error.lineno}" in r.error.message
    assert host.calls == []  # refused statically: nothing ran


def test_refusal_message_is_actionable():
    r = run("x = 1\nwhile x < 3:\n    x += 1")
    assert r.error.message == (
        "Refused: while loops are not allowed; use a for loop over a finite iterable (line 2)"
    )
    assert "datetime" in run("import datetime").error.message


def test_forbidden_builtin_names_usable_as_variables():
    r = run("id = 5\ntype_ = 'x'\nhash = 'h'\nfinal_return_value = [id, hash]")
    assert r.status == "success" and r.final_return_value.value == [5, "h"]


def test_syntax_error():
    r = run("x = (1,\ny = 2")
    assert r.status == "error" and r.error.kind == "syntax" and r.error.lineno is not None


def test_break_outside_loop():
    r = run("break")
    assert r.error.kind == "syntax" and "'break' outside loop" in r.error.message
    r = run("for i in []:\n    pass\nelse:\n    continue")
    assert r.error.kind == "syntax"


def test_runtime_refusals():
    cases = [
        ("x = datetime.datetime.now()", "datetime.now() is not available"),
        ("x = datetime.date.today()", "date.today() is not available"),
        ("x = '{0.__class__}'.format(1)", "attribute or index access"),
        ("x = '{a[0]}'.format(a=[1])", "attribute or index access"),
        ("x = datetime.datetime(2024, 1, 1).timestamp()", "timezone-aware"),
        ("f = 'ev' + 'al'\nx = 1", None),
    ]
    for src, msg in cases:
        r = run(src)
        if msg is None:
            assert r.status == "success"
            continue
        assert r.status == "error" and r.error.kind == "refused", (src, r.error)
        assert msg in r.error.message


def test_python_object_internals_are_unreachable():
    for src in (
        "x = str.mro",
        "x = (1).real",
        "x = 'a'.encode()",
        "x = [].__len__",
        "x = len.__self__",
        "x = print.__call__",
        "x = type(1).__subclasses__()",
        "x = datetime.sys",
        "x = range(3).__iter__",
    ):
        r = run(src)
        assert r.status == "error", src
        assert r.error.kind in ("refused", "runtime"), (src, r.error)


def test_unknown_attribute_is_attribute_error_listing_methods():
    r = run("x = 'abc'.encode('utf8')")
    assert r.error.kind == "runtime"
    assert "AttributeError: 'str' object has no attribute 'encode'" in r.error.message
    assert "upper" in r.error.message
