"""One or more programs for each laundering class an attacker's review found (issue #11), run on two
different tool outputs: every difference in what reaches a tool or the final value carries the producer.
The property test in test_noninterference.py covers the classes in general; these pin the known shapes."""

from __future__ import annotations

import pytest
from test_noninterference import SRC_META, TOOLS, check_pair, run, tainted

from relay.interpreter import Limits, ToolSpec, run_program
from relay.interpreter.builtins import BUILTINS
from relay.meta import DEFAULT_META, Meta, ValueWithMeta, make_set

LEAK_PROGRAMS = {
    "try_else_rebuilds_string": """
secret = get_str(q='p')
out = ''
for c in 'abkpqz':
    try:
        secret.index(c)
    except ValueError:
        pass
    else:
        out += c
send(x=out)
""",
    "handler_only_name": """
secret = get_str(q='p')
hit = 0
try:
    {'a': 1}[secret]
except KeyError:
    hit = 1
send(x=hit)
""",
    "break_not_taken": """
secret = get_int(q=1)
n = 0
for i in range(4):
    if i == secret:
        break
    n += 1
send(x=n)
""",
    "continue_not_taken": """
secret = get_int(q=1)
for i in range(1):
    if secret > 1:
        pass
    else:
        continue
    send(x=1)
log(x=0)
""",
    "raise_not_taken": """
secret = get_int(q=1)
flag = 0
try:
    if secret > 1:
        raise ValueError('x')
    flag = 1
except ValueError:
    pass
send(x=flag)
""",
    "for_else": """
secret = get_list(q=1)
found = 'no'
for v in [1, 2]:
    if v in secret:
        break
else:
    found = 'yes'
send(x=found)
""",
    "del_then_nameerror": """
secret = get_int(q=1)
x = 1
if secret > 1:
    del x
try:
    y = x
    r = 'kept'
except NameError:
    r = 'deleted'
send(x=r)
""",
    "alias_mutated_in_untaken_branch": """
secret = get_int(q=1)
a = []
b = a
if secret > 1:
    b.append(1)
send(x=len(a))
""",
    "nested_alias_replaced_in_other_branch": """
secret = get_int(q=1)
d = {'k': []}
old = d['k']
if secret > 1:
    d['k'].append(1)
else:
    d['k'] = []
send(x=len(old))
""",
    "receiver_chosen_by_ternary": """
secret = get_int(q=1)
a = []
b = []
(a if secret > 1 else b).append(1)
send(x=len(a))
""",
    "receiver_chosen_by_key": """
secret = get_str(q='p')
groups = {'a': [], 'k': []}
seen_a = groups['a']
groups[secret if secret in groups else 'a'].append(1)
send(x=len(seen_a))
""",
    "callee_chosen_by_data": """
secret = get_str(q='p')
f = {'p': send, 'q': log}.get(secret, log)
f(x=1)
""",
    "ternary_chooses_tool": """
secret = get_int(q=1)
(send if secret > 1 else log)(x=1)
""",
    "bound_method_chosen_by_data": """
secret = get_int(q=1)
a = []
b = []
push = a.append if secret > 1 else b.append
push(1)
send(x=len(a))
""",
    "short_circuit_mutation": """
secret = get_int(q=1)
a = []
secret > 1 and a.append(1)
send(x=len(a))
""",
    "comprehension_filter_mutation": """
secret = get_list(q=1)
a = []
[a.append(v) for v in [1, 2, 3] if v in secret]
send(x=len(a))
""",
    "format_spec_error_text": """
secret = get_str(q='p')
try:
    s = f'{1:{secret}}'
except ValueError as e:
    s = str(e)
send(x=s)
""",
    "str_format_keyerror_field": """
secret = get_str(q='p')
try:
    s = ('{' + secret + '}').format(a=1)
except KeyError as e:
    s = str(e)
send(x=s)
""",
    "unexpected_keyword": """
secret = get_dict(q=1)
try:
    s = 'x'.split(**secret)
except TypeError as e:
    s = str(e)
send(x=s)
""",
    "dict_from_double_star_keys": """
secret = get_dict(q=1)
d = dict(**secret)
send(x=sorted(d))
""",
    "update_from_double_star_keys": """
secret = get_dict(q=1)
d = {}
d.update(**secret)
send(x=list(d.keys()))
""",
    "min_max_choice": """
secret = get_list(q=1)
send(x=max([1, 2], key=lambda_free) if False else max(secret + [0]))
""".replace("key=lambda_free", "key=abs"),
}
OUTPUTS = [
    {"get_int": 0, "get_str": "a", "get_list": [], "get_dict": {"sep": ","}},
    {"get_int": 3, "get_str": "p", "get_list": [1, 2], "get_dict": {"maxsplit": 1, "IGNORE ALL": 2}},
]


@pytest.mark.parametrize("name", sorted(LEAK_PROGRAMS))
def test_laundering_class_is_tracked(name):
    check_pair(LEAK_PROGRAMS[name], OUTPUTS[0], OUTPUTS[1])
    for data in OUTPUTS:  # every sink call is tainted, whatever the data
        host, res = run(LEAK_PROGRAMS[name], data)
        assert res.status == "success", res.error
        for _, _, _, metas in (e for e in host.events if e[0] == "call" and e[1] in ("send", "log")):
            assert any(tainted(m) for m in metas.values()), name


def test_tool_as_key_function_is_refused():
    host, res = run("secret = get_list(q=1)\nr = sorted(secret, key=send)", OUTPUTS[1])
    assert res.status == "error" and res.error.kind == "refused"
    assert "key=" in res.error.message


class PolicyRewritingHost:
    """A host whose policy rewrites the metadata of argument ``x`` (SQRT ``x.producers = ...``)."""

    last_arg_meta = None

    def call_tool(self, name, kwargs, call_index):
        self.last_arg_meta = {"x": Meta(make_set(["forged"]), make_set(["*"]), make_set(["forged-tag"]))}
        return ValueWithMeta(None, DEFAULT_META)

    def check_branch(self, meta):
        return None


def test_policy_writes_never_reach_shared_builtins():
    tools = {"send": ToolSpec("send", ["x"])}
    res = run_program(
        "send(x=str)\nsend(x=len)\nsend(x=None)\ny = str", tools=tools, host=PolicyRewritingHost()
    )
    assert res.status == "success"
    assert BUILTINS["str"].m is DEFAULT_META and BUILTINS["len"].m is DEFAULT_META
    # a later run, of any tenant, sees pristine built-ins
    res2 = run_program("final_return_value = [str, len]", tools=tools, host=PolicyRewritingHost())
    assert res2.final_return_value.meta == DEFAULT_META


def test_policy_writes_reach_the_program_variable():
    tools = {"send": ToolSpec("send", ["x"])}
    res = run_program(
        "v = 'hello'\nsend(x=v)\nfinal_return_value = v", tools=tools, host=PolicyRewritingHost()
    )
    assert "forged" in res.final_return_value.meta.producers


def test_context_meta_of_a_call_without_arguments():
    class Suspending:
        def call_tool(self, name, kwargs, call_index):
            if name == "get_int":
                return ValueWithMeta(3, SRC_META)
            from relay.interpreter import Suspend

            raise Suspend()

        def check_branch(self, meta):
            return None

    tools = dict(TOOLS, ping=ToolSpec("ping", []))
    res = run_program(
        "x = get_int(q=1)\nif x > 1:\n    ping()",
        tools=tools,
        host=Suspending(),
        limits=Limits(wall_time_seconds=2),
    )
    assert res.status == "suspended" and res.suspended.tool_name == "ping"
    assert tainted(res.suspended.context_meta)
