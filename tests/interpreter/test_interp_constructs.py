"""One test per supported construct: the value computed must match Python's."""

import pytest
from interp_helpers import FakeHost, final, ok, run

CASES = [
    # literals, names, arithmetic
    ("final_return_value = 1 + 2 * 3 - 4 / 2", 5.0),
    ("final_return_value = 7 // 2, 7 % 3, 2 ** 10, -3, +4, ~5", [3, 1, 1024, -3, 4, -6]),
    ("final_return_value = 6 & 3, 6 | 3, 6 ^ 3, 1 << 4, 256 >> 2", [2, 7, 5, 16, 64]),
    ("final_return_value = 'ab' + 'cd', 'x' * 3, 3 * 'y'", ["abcd", "xxx", "yyy"]),
    (
        "final_return_value = [1, 2] + [3], [0] * 3, (1,) + (2,), (1, 2) * 2",
        [[1, 2, 3], [0, 0, 0], [1, 2], [1, 2, 1, 2]],
    ),
    ("final_return_value = None, True, False, 1.5, 'é'", [None, True, False, 1.5, "é"]),
    ("final_return_value = 'a %s b %d c %.2f' % ('x', 3, 1.5)", "a x b 3 c 1.50"),
    ("final_return_value = '%(k)s!' % {'k': 'v'}", "v!"),
    # f-strings
    (
        "x = 3\nname = 'bob'\nfinal_return_value = f'{name!r} has {x:>4} items, {x * 1.5:.2f}'",
        "'bob' has    3 items, 4.50",
    ),
    ("final_return_value = f'{[1, 2]} {({1: \"a\"})} {None}'", "[1, 2] {1: 'a'} None"),
    ("w = 6\nfinal_return_value = f'{\"x\":>{w}}|'", "     x|"),
    ("final_return_value = f'{{literal}} {1}'", "{literal} 1"),
    # comparisons
    (
        "final_return_value = 1 < 2 < 3, 1 < 2 > 3, 1 == 1.0, 'a' != 'b', [1] == [1], (1, 2) < (1, 3)",
        [True, False, True, True, True, True],
    ),
    (
        "x = None\nfinal_return_value = x is None, x is not None, 1 in [1, 2], 3 not in [1, 2], 'b' in 'abc'",
        [True, False, True, True, True],
    ),
    (
        "d = {'a': 1}\nfinal_return_value = 'a' in d, 'b' in d, 2 in {1, 2}, 5 in range(10)",
        [True, False, True, True],
    ),
    ("final_return_value = [1, [2]] in [[1, [2]], 3]", True),
    # boolean logic and conditional expressions
    (
        "final_return_value = (0 or 'x'), (1 and 2), (None and 1), (not 0), ('' or [] or 'z')",
        ["x", 2, None, True, "z"],
    ),
    ("x = 5\nfinal_return_value = 'big' if x > 3 else 'small'", "big"),
    # displays and comprehensions
    ("final_return_value = [x * x for x in range(5) if x % 2 == 0]", [0, 4, 16]),
    ("final_return_value = {k: v for k, v in [('a', 1), ('b', 2)] if v > 1}", {"b": 2}),
    ("final_return_value = sorted({x % 3 for x in range(10)})", [0, 1, 2]),
    ("final_return_value = [(i, j) for i in range(3) for j in range(i)]", [[1, 0], [2, 0], [2, 1]]),
    ("final_return_value = sum(x for x in range(5))", 10),
    (
        "a = [1, 2]\nfinal_return_value = [*a, 3, *(4, 5)], {**{'a': 1}, 'b': 2}",
        [[1, 2, 3, 4, 5], {"a": 1, "b": 2}],
    ),
    ("x = 10\ny = [x for x in range(3)]\nfinal_return_value = x", 10),  # comprehension vars don't leak
    # assignments
    ("a = b = 2\nfinal_return_value = a + b", 4),
    ("a, b = 1, 2\na, b = b, a\nfinal_return_value = [a, b]", [2, 1]),
    (
        "first, *rest = [1, 2, 3]\n*init, last = 'abc'\nfinal_return_value = [first, rest, init, last]",
        [1, [2, 3], ["a", "b"], "c"],
    ),
    ("(a, b), c = [1, 2], 3\nfinal_return_value = a + b + c", 6),
    ("x = 1\nx += 2\nx *= 5\nx -= 1\nx //= 2\nfinal_return_value = x", 7),
    ("s = 'a'\ns += 'b'\nfinal_return_value = s", "ab"),
    ("d = {'n': 1}\nd['n'] += 4\nd['m'] = [1]\nd['m'] += [2]\nfinal_return_value = d", {"n": 5, "m": [1, 2]}),
    ("l = [1, 2, 3]\nl[0] = 9\nl[-1] = 7\nl[1:2] = [5, 5]\nfinal_return_value = l", [9, 5, 5, 7]),
    ("x: int = 5\nfinal_return_value = x", 5),
    ("a = [1]\nb = a\nb += [2]\nfinal_return_value = a", [1, 2]),  # in-place on aliases
    ("s = {1}\nt = s\nt |= {2}\nfinal_return_value = sorted(s)", [1, 2]),
    (
        "d = {'a': 1, 'b': 2}\ndel d['a']\nl = [1, 2, 3]\ndel l[0]\nx = 1\ndel x\nfinal_return_value = [d, l]",
        [{"b": 2}, [2, 3]],
    ),
    # subscripts and slices
    (
        "s = 'hello'\nfinal_return_value = s[1], s[-1], s[1:3], s[::-1], s[:10]",
        ["e", "o", "el", "olleh", "hello"],
    ),
    (
        "l = list(range(10))\nfinal_return_value = l[2:8:2], l[-3:], (1, 2, 3)[1:]",
        [[2, 4, 6], [7, 8, 9], [2, 3]],
    ),
    ("d = {(1, 2): 'pair'}\nfinal_return_value = d[(1, 2)], d[1, 2]", ["pair", "pair"]),
    # control flow
    (
        "x = 5\nif x > 10:\n    r = 'a'\nelif x > 3:\n    r = 'b'\nelse:\n    r = 'c'\nfinal_return_value = r",
        "b",
    ),
    (
        "t = 0\nfor i in range(10):\n    if i == 2:\n        continue\n    if i == 5:\n        break\n    t += i\n"
        "final_return_value = t",
        0 + 1 + 3 + 4,
    ),
    (
        "r = []\nfor i in range(3):\n    r.append(i)\nelse:\n    r.append('done')\nfinal_return_value = r",
        [0, 1, 2, "done"],
    ),
    ("r = []\nfor i in range(3):\n    break\nelse:\n    r.append('done')\nfinal_return_value = r", []),
    (
        "r = []\nfor k, v in {'a': 1, 'b': 2}.items():\n    r.append(k * v)\nfinal_return_value = r",
        ["a", "bb"],
    ),
    (
        "r = []\nfor i, (a, b) in enumerate([(1, 2), (3, 4)]):\n    r.append(i + a + b)\nfinal_return_value = r",
        [3, 8],
    ),
    ("r = ''\nfor c in 'abc':\n    r = c + r\nfinal_return_value = r", "cba"),
    ("r = []\nfor x in {'b', 'a', 'c'}:\n    r.append(x)\nfinal_return_value = r", ["a", "b", "c"]),
    ("pass\nfinal_return_value = 1", 1),
    # try / except / raise
    (
        "try:\n    x = 1 / 0\nexcept ZeroDivisionError as e:\n    x = 'caught: ' + str(e)\nfinal_return_value = x",
        "caught: division by zero",
    ),
    (
        "try:\n    {}['k']\nexcept (IndexError, KeyError) as e:\n    r = type(e) == KeyError\n"
        "final_return_value = r",
        True,
    ),
    ("try:\n    [][1]\nexcept LookupError:\n    r = 'lookup'\nfinal_return_value = r", "lookup"),
    (
        "try:\n    raise ValueError('bad value')\nexcept Exception as e:\n    r = str(e)\nfinal_return_value = r",
        "bad value",
    ),
    (
        "try:\n    int('x')\nexcept ValueError:\n    r = 1\nelse:\n    r = 2\nfinally:\n    r = r * 10\n"
        "final_return_value = r",
        10,
    ),
    ("try:\n    r = int('5')\nexcept ValueError:\n    r = 1\nelse:\n    r += 2\nfinal_return_value = r", 7),
    (
        "try:\n    try:\n        raise KeyError('k')\n    except KeyError:\n        raise\nexcept Exception as e:\n"
        "    r = e.args\nfinal_return_value = r",
        ["k"],
    ),
    (
        "try:\n    undefined_name\nexcept NameError as e:\n    r = str(e)\nfinal_return_value = r",
        "name 'undefined_name' is not defined",
    ),
    ("try:\n    'a' + 1\nexcept TypeError:\n    r = 'type'\nfinal_return_value = r", "type"),
    (
        "try:\n    assert 1 == 2, 'nope'\nexcept AssertionError as e:\n    r = str(e)\nfinal_return_value = r",
        "nope",
    ),
    (
        "r = []\nfor i in range(3):\n    try:\n        if i == 1:\n            continue\n        r.append(i)\n"
        "    finally:\n        r.append('f')\nfinal_return_value = r",
        [0, "f", "f", 2, "f"],
    ),
    # builtins
    ("final_return_value = len('abc'), len([1]), len({'a': 1}), len(range(5)), len({1, 2})", [3, 1, 1, 5, 2]),
    (
        "final_return_value = str(1), int('7'), int('ff', 16), float('1.5'), bool(''), bool([0])",
        ["1", 7, 255, 1.5, False, True],
    ),
    (
        "final_return_value = list('ab'), tuple([1]), sorted(set([3, 1, 3])), dict(a=1), dict([('b', 2)])",
        [["a", "b"], [1], [1, 3], {"a": 1}, {"b": 2}],
    ),
    (
        "final_return_value = sorted([3, 1, 2], reverse=True), sorted(['b', 'A', 'c'], key=str.lower)",
        [[3, 2, 1], ["A", "b", "c"]],
    ),
    (
        "final_return_value = sorted([[1, 'b'], [0, 'a']]), sorted(['aaa', 'b', 'cc'], key=len)",
        [[[0, "a"], [1, "b"]], ["b", "cc", "aaa"]],
    ),
    (
        "final_return_value = list(reversed([1, 2, 3])), list(enumerate('ab', 1)), list(zip([1, 2], 'ab'))",
        [[3, 2, 1], [[1, "a"], [2, "b"]], [[1, "a"], [2, "b"]]],
    ),
    (
        "final_return_value = min(3, 1, 2), max([1, 5, 2]), min([], default=0), max('abc'), "
        "max(['a', 'bbb', 'cc'], key=len)",
        [1, 5, 0, "c", "bbb"],
    ),
    (
        "final_return_value = sum([1, 2, 3]), sum([0.5, 0.25], 1), abs(-2), round(2.567, 2), round(2.5)",
        [6, 1.75, 2, 2.57, 2],
    ),
    ("final_return_value = any([0, 1]), all([1, 0]), any([]), all([])", [True, False, False, True]),
    (
        "final_return_value = isinstance(1, int), isinstance('a', (int, str)), isinstance([], list), "
        "isinstance({}, dict), isinstance(True, int), isinstance(None, str)",
        [True, True, True, True, True, False],
    ),
    ("final_return_value = type(1) == int, type('a') is str, type([]) == list", [True, True, True]),
    (
        "final_return_value = divmod(7, 2), pow(2, 5), pow(2, 5, 3), chr(65), ord('a'), hex(255), format(3.14159, '.2f')",
        [[3, 1], 32, 2, "A", 97, "0xff", "3.14"],
    ),
    (
        "final_return_value = repr('a'), repr([1, 'x']), str({'a': {1, 2}})",
        ["'a'", "[1, 'x']", "{'a': {1, 2}}"],
    ),
    ("print('hi', 2, sep='-')\nfinal_return_value = 1", 1),
    # str methods
    (
        "s = '  Hello World  '\nfinal_return_value = [s.strip(), s.lower().strip(), s.upper().strip(), "
        "s.strip().split(' '), s.lstrip(), s.rstrip()]",
        ["Hello World", "hello world", "HELLO WORLD", ["Hello", "World"], "Hello World  ", "  Hello World"],
    ),
    (
        "final_return_value = ', '.join(['a', 'b']), 'a-b'.replace('-', '+'), 'abc'.startswith('a'), "
        "'abc'.endswith(('x', 'c')), 'abcb'.find('b'), 'abcb'.count('b')",
        ["a, b", "a+b", True, True, 1, 2],
    ),
    (
        "final_return_value = 'hello world'.title(), 'hello'.capitalize(), 'a\\nb'.splitlines(), '12'.isdigit(), "
        "'ab'.isalpha(), 'x'.center(5, '*'), '7'.zfill(3), 'a,b,c'.rsplit(',', 1), 'a=b'.partition('=')",
        ["Hello World", "Hello", ["a", "b"], True, True, "**x**", "007", ["a,b", "c"], ["a", "=", "b"]],
    ),
    (
        "final_return_value = '{} and {}'.format(1, 'x'), '{0}{0}'.format('ab'), '{n:>3}'.format(n=5), "
        "'{!r}'.format('q')",
        ["1 and x", "abab", "  5", "'q'"],
    ),
    (
        "final_return_value = 'prefix_x'.removeprefix('prefix_'), 'ab'.ljust(4, '.'), 'ab'.rjust(4)",
        ["x", "ab..", "  ab"],
    ),
    # list methods
    (
        "l = [3, 1]\nl.append(2)\nl.extend([5, 4])\nl.insert(0, 9)\np = l.pop()\np0 = l.pop(0)\nl.remove(5)\n"
        "final_return_value = [l, p, p0, l.index(2), l.count(1)]",
        [[3, 1, 2], 4, 9, 2, 1],
    ),
    (
        "l = [3, 1, 2]\nl.sort()\nm = l.copy()\nm.reverse()\nn = [1]\nn.clear()\nfinal_return_value = [l, m, n]",
        [[1, 2, 3], [3, 2, 1], []],
    ),
    ("l = ['bb', 'a', 'ccc']\nl.sort(key=len, reverse=True)\nfinal_return_value = l", ["ccc", "bb", "a"]),
    # dict methods
    (
        "d = {'a': 1}\nfinal_return_value = [d.get('a'), d.get('z'), d.get('z', 0), list(d.keys()), "
        "list(d.values()), list(d.items())]",
        [1, None, 0, ["a"], [1], [["a", 1]]],
    ),
    (
        "d = {'a': 1}\nd.update({'b': 2}, )\nd.update(c=3)\nx = d.pop('a')\ny = d.pop('q', 'dflt')\n"
        "z = d.setdefault('e', [])\nz.append(1)\nfinal_return_value = [d, x, y, d.copy() == d]",
        [{"b": 2, "c": 3, "e": [1]}, 1, "dflt", True],
    ),
    ("d = {'a': 1, 'b': 2}\nk = d.popitem()\nd.clear()\nfinal_return_value = [k, d]", [["b", 2], {}]),
    ("r = {'name': 'x', 'n': 2}\nfinal_return_value = r.name", "x"),  # attribute read of dict keys
    # set methods
    (
        "s = {1, 2}\ns.add(3)\ns.update([4])\ns.discard(1)\ns.remove(2)\nfinal_return_value = sorted(s)",
        [3, 4],
    ),
    (
        "a = {1, 2, 3}\nb = {2, 3, 4}\nfinal_return_value = [sorted(a | b), sorted(a & b), sorted(a - b), "
        "sorted(a ^ b), sorted(a.union([9])), sorted(a.intersection(b)), sorted(a.difference(b)), "
        "a.issubset({1, 2, 3, 4}), a.isdisjoint({7})]",
        [[1, 2, 3, 4], [2, 3], [1], [1, 4], [1, 2, 3, 9], [2, 3], [1], True, True],
    ),
    ("s = {'b', 'a'}\nx = s.pop()\nfinal_return_value = [x, sorted(s)]", ["a", ["b"]]),
    # datetime subset
    (
        "d = datetime.datetime(2024, 3, 1, 12, 30)\nfinal_return_value = [d.isoformat(), d.strftime('%Y/%m/%d'), "
        "d.year, d.hour, (d + timedelta(days=1)).day, d.weekday()]",
        ["2024-03-01T12:30:00", "2024/03/01", 2024, 12, 2, 4],
    ),
    (
        "a = datetime.datetime.fromisoformat('2024-01-01T00:00:00')\nb = datetime.datetime(2024, 1, 3)\n"
        "final_return_value = [(b - a).days, (b - a).total_seconds(), a < b, str(a.date())]",
        [2, 172800.0, True, "2024-01-01"],
    ),
    (
        "d = datetime.date(2024, 2, 28) + datetime.timedelta(days=2)\nfinal_return_value = d.isoformat()",
        "2024-03-01",
    ),
    (
        "d = date.fromisoformat('2024-05-06')\nfinal_return_value = [d.month, f'{d:%d.%m.%Y}']",
        [5, "06.05.2024"],
    ),
    (
        "d = datetime.datetime(2024, 1, 1, tzinfo=timezone.utc)\nfinal_return_value = d.isoformat()",
        "2024-01-01T00:00:00+00:00",
    ),
    ("d = datetime.datetime.strptime('01/02/2024', '%d/%m/%Y')\nfinal_return_value = d.month", 2),
    # misc
    ("# a comment\nx = 1  # trailing\n'docstring-like expression'\nfinal_return_value = x", 1),
    ("x = [1, 2, 3]\nfinal_return_value = x[len(x) - 1]", 3),
]


@pytest.mark.parametrize("src,expected", CASES, ids=[str(i) for i in range(len(CASES))])
def test_construct(src, expected):
    assert final(src) == expected


def test_final_return_value_unset_is_none():
    r = ok("x = 1")
    assert r.final_return_value is None
    assert r.namespace["x"].value == 1


def test_print_is_captured():
    r = ok("print('a', [1, {2}])\nprint('b', end='')")
    assert r.output == ["a [1, {2}]\n", "b"]


def test_uncaught_exception_reports_class_message_and_line():
    r = run("x = 1\ny = {}\nz = y['missing']")
    assert r.status == "error"
    assert r.error.kind == "runtime"
    assert r.error.lineno == 3
    assert "KeyError: 'missing'" in r.error.message and "line 3" in r.error.message


def test_raise_non_exception_value_is_visible():
    r = run("raise 'something went wrong'")
    assert r.status == "error" and "Exception: something went wrong" in r.error.message


def test_bare_raise_outside_handler():
    r = run("raise")
    assert r.status == "error" and "RuntimeError" in r.error.message


def test_tool_call_positional_and_keyword():
    host = FakeHost()
    r = ok("a = search('cats', 3)\nb = search(query='dogs')\nfinal_return_value = [a, b]", host=host)
    assert [(n, {k: v.value for k, v in kw.items()}, i) for n, kw, i in host.calls] == [
        ("search", {"query": "cats", "limit": 3}, 0),
        ("search", {"query": "dogs"}, 1),
    ]
    assert r.final_return_value.value[0] == {"tool": "search", "args": {"query": "cats", "limit": 3}}
    assert r.tool_calls == 2


def test_tool_args_are_json_safe_copies():
    host = FakeHost()
    ok("t = (1, 2)\ns = {'b', 'a'}\nsearch(query=[t, s, datetime.date(2024, 1, 1)])", host=host)
    assert host.calls[0][1]["query"].value == [[1, 2], ["a", "b"], "2024-01-01"]


def test_tool_unknown_keyword_is_actionable():
    r = run("search(q='x')")
    assert r.status == "error" and r.error.kind == "runtime"
    assert "tool search has no parameter q; parameters are: query, limit" in r.error.message


def test_tool_missing_required_and_too_many_positional():
    assert "missing required parameter(s): query" in run("search(limit=1)").error.message
    assert "at most 2 positional" in run("search(1, 2, 3)").error.message
    assert "multiple values" in run("search('a', query='b')").error.message


def test_tool_error_is_catchable():
    from relay.interpreter import ToolError

    host = FakeHost({"get_doc": lambda a: ToolError("not found: " + a["doc_id"])})
    r = ok(
        "try:\n    d = get_doc('x1')\nexcept Exception as e:\n    d = 'failed: ' + str(e)\n"
        "final_return_value = d",
        host=host,
    )
    assert r.final_return_value.value == "failed: not found: x1"
    r = ok("try:\n    d = get_doc('x1')\nexcept ToolError:\n    d = 0\nfinal_return_value = d", host=host)
    assert r.final_return_value.value == 0


def test_uncaught_tool_error():
    from relay.interpreter import ToolError

    r = run("get_doc('x')", host=FakeHost({"get_doc": lambda a: ToolError("boom")}))
    assert r.status == "error" and r.error.message.startswith("ToolError: boom")


def test_policy_denied_ends_run_and_is_not_catchable():
    from relay.interpreter import PolicyDenied

    record = {"final_verdict": "hard_denied"}
    host = FakeHost(
        {
            "send_email": lambda a: PolicyDenied(
                "Tool call to 'send_email' is denied by argument checking policies.", record
            )
        }
    )
    r = run("try:\n    send_email(to='x')\nexcept Exception:\n    pass\nfinal_return_value = 1", host=host)
    assert r.status == "policy_denied"
    assert r.denial.record == record
    assert r.error.kind == "policy_denied" and "denied by argument checking policies" in r.error.message
    assert r.final_return_value is None


def test_suspend_fills_in_call_details():
    from relay.interpreter import Suspend

    host = FakeHost({"get_doc": lambda a: Suspend(payload="p")})
    r = run("x = 1\nd = get_doc('abc')\nfinal_return_value = d", host=host)
    assert r.status == "suspended"
    s = r.suspended
    assert (s.tool_name, s.call_index, s.payload) == ("get_doc", 0, "p")
    assert s.kwargs["doc_id"].value == "abc"
    assert r.error is None


def test_tools_can_be_referenced_as_values_and_shadowed():
    assert final("f = search\nfinal_return_value = f('q')['tool']") == "search"
    assert final("search = 3\nfinal_return_value = search") == 3


def test_parse_with_ai_is_just_a_tool():
    host = FakeHost({"parse_with_ai": lambda a: {"name": "Ann", "age": 31}})
    r = ok(
        "info = parse_with_ai(query='Ann is 31', output_schema={'name': 'str'})\n"
        "final_return_value = f'{info.name} / {info[\"age\"]}'",
        host=host,
    )
    assert r.final_return_value.value == "Ann / 31"


def test_namespace_is_json_safe():
    r = ok(
        "a = {3, 1}\nb = (1, (2, 3))\nc = datetime.datetime(2024, 1, 1)\nd = len\ne = {(1, 2): 'x'}\n"
        "f = ValueError('m')"
    )
    ns = {k: v.value for k, v in r.namespace.items()}
    assert ns == {
        "a": [1, 3],
        "b": [1, [2, 3]],
        "c": "2024-01-01 00:00:00",
        "d": "<built-in function len>",
        "e": {"(1, 2)": "x"},
        "f": "m",
    }
    import json

    json.dumps({k: v.to_json() for k, v in r.namespace.items()})


def test_context_vars_are_predefined():
    from relay.meta import ValueWithMeta

    r = ok(
        "final_return_value = initial_state['x'] + 1",
        context_vars={"initial_state": ValueWithMeta({"x": 41})},
    )
    assert r.final_return_value.value == 42
    assert "initial_state" in r.namespace


def test_dict_iteration_order_is_insertion_order():
    assert final("d = {}\nd['z'] = 1\nd['a'] = 2\nd['m'] = 3\nfinal_return_value = list(d)") == [
        "z",
        "a",
        "m",
    ]


def test_steps_counted():
    r = ok("x = 0\nfor i in range(3):\n    x += i")
    assert r.steps == 2 + 3


def test_key_error_message_for_empty_key():
    r = run("d = {}\nd['']")
    assert "KeyError: ''" in r.error.message
