"""Metadata propagation (sqrt.md §6.1), implicit flow and the branching meta-policy hook (§9.4)."""

from interp_helpers import TOOL_META, FakeHost, M, meta_of, ok, run

from relay.interpreter import ToolError, ToolSpec
from relay.meta import DEFAULT_META, UNIVERSAL, ValueWithMeta

A = M("ta", producers=("pa",), consumers=("alice", "bob"))
B = M("tb", producers=("pb",), consumers=("bob", "carol"))


def two_sources() -> FakeHost:
    """get_doc('a') -> 'alpha' with meta A; get_doc('b') -> 'beta' with meta B; search -> list with meta A."""
    return FakeHost(
        {
            "get_doc": lambda a: ValueWithMeta(
                {"a": "alpha", "b": "beta"}[a["doc_id"]], A if a["doc_id"] == "a" else B
            ),
            "search": lambda a: ValueWithMeta([{"title": "t1", "n": 1}, {"title": "t2", "n": 2}], A),
        }
    )


def test_literals_get_default_meta():
    r = ok("x = 1\ns = 'lit'\nl = [1, 'a', {'k': (1, 2)}]\nfinal_return_value = f'{x}{s}'")
    for name in ("x", "s", "l", "final_return_value"):
        assert meta_of(r, name) == DEFAULT_META


def test_tool_result_carries_host_meta():
    r = ok("a = get_doc('a')", host=two_sources())
    assert meta_of(r, "a") == A


def test_binop_merges_producers_union_consumers_intersection_tags_union():
    r = ok("a = get_doc('a')\nb = get_doc('b')\nc = a + ' ' + b\nd = len(a) * 2", host=two_sources())
    m = meta_of(r, "c")
    assert m.producers == {"pa", "pb"}
    assert m.consumers == {"bob"}
    assert m.tags == {"ta", "tb"}
    assert meta_of(r, "d") == A


def test_universal_consumers_are_the_identity():
    r = ok("a = get_doc('a')\nc = a + 'literal'", host=two_sources())
    assert meta_of(r, "c").consumers == {"alice", "bob"}
    assert ok("c = 'x' + 'y'").namespace["c"].meta.consumers is UNIVERSAL


def test_container_carries_merge_of_elements_and_element_read_is_precise():
    r = ok(
        "a = get_doc('a')\nl = [a, 'lit']\nx = l[0]\ny = l[1]\nd = {'k': a, 'j': 1}\nu = d['j']\nv = d['k']",
        host=two_sources(),
    )
    assert meta_of(r, "l") == A  # container = merge of its elements
    assert meta_of(r, "x") == A
    assert meta_of(r, "y") == DEFAULT_META  # element meta | container reference meta (default)
    assert meta_of(r, "d") == A
    assert meta_of(r, "u") == DEFAULT_META
    assert meta_of(r, "v") == A


def test_element_read_merges_container_meta():
    r = ok(
        "res = search(query='q')\nfirst = res[0]\ntitle = res[1]['title']\nn = [x['n'] for x in res]\n"
        "for item in res:\n    last = item['title']",
        host=two_sources(),
    )
    for name in ("first", "title", "n", "last"):
        assert meta_of(r, name) == A, name


def test_nested_tool_result_elements_carry_result_meta_via_any_path():
    r = ok(
        "res = search(query='q')\nvals = list(res[0].values())\nks = list(res[0].keys())\n"
        "it = res[0].items()\nc = res.copy()\nsl = res[:1]\nz = list(zip(res, [1, 2]))\ne = list(enumerate(res))\n"
        "s = sorted(x['title'] for x in res)",
        host=two_sources(),
    )
    for name in ("vals", "ks", "it", "c", "sl", "z", "e", "s"):
        assert A.tags <= meta_of(r, name).tags, name


def test_fstring_and_format_merge_parts():
    r = ok(
        "a = get_doc('a')\nb = get_doc('b')\nf = f'{a} and {b}'\ng = '{} {}'.format(a, 'x')\n"
        "h = '%s!' % a\ni = str(a)\nj = repr([a])",
        host=two_sources(),
    )
    assert meta_of(r, "f").tags == {"ta", "tb"}
    for name in ("g", "h", "i", "j"):
        assert meta_of(r, name) == A, name


def test_method_calls_merge_receiver_and_arguments():
    r = ok(
        "a = get_doc('a')\nb = get_doc('b')\nu = a.upper()\nr = 'x-y'.replace('-', b)\n"
        "j = ', '.join([a, 'lit'])\nsp = a.split('l')\nw = sp[0]\nst = 'abc'.startswith(b)",
        host=two_sources(),
    )
    assert meta_of(r, "u") == A
    assert meta_of(r, "r") == B
    assert meta_of(r, "j") == A
    assert meta_of(r, "sp") == A and meta_of(r, "w") == A
    assert meta_of(r, "st") == B


def test_builtins_merge_inputs():
    r = ok(
        "a = get_doc('a')\nn = len(a)\nm = max([1, len(a)])\nt = sorted([a, 'zzz'])\nfirst = t[1]\n"
        "s = sum([len(a), 1])\nb = bool(a)\ni = isinstance(a, str)",
        host=two_sources(),
    )
    for name in ("n", "m", "s", "b", "i"):
        assert meta_of(r, name) == A, name
    # sorting: the position of every element depends on all elements
    assert meta_of(r, "first") == A


def test_implicit_flow_if_taken_and_not_taken():
    src = "a = get_doc('a')\ny = 0\nz = 0\nif a == 'alpha':\n    y = 1\nif a == 'nope':\n    z = 1\nw = 5"
    r = ok(src, host=two_sources())
    assert meta_of(r, "y") == A  # assigned under the condition
    assert meta_of(r, "z") == A  # not assigned, but its value still reveals the condition
    assert meta_of(r, "w") == DEFAULT_META  # after the if, no taint


def test_implicit_flow_for_loop():
    r = ok("res = search(query='q')\ncount = 0\nfor x in res:\n    count += 1\nafter = 1", host=two_sources())
    assert meta_of(r, "count") == A
    assert meta_of(r, "after") == DEFAULT_META


def test_implicit_flow_break_taints_loop_written_names():
    host = two_sources()
    r = ok(
        "a = get_doc('a')\ncount = 0\nfor i in range(10):\n    if a == 'alpha':\n        break\n"
        "    count += 1",
        host=host,
    )
    assert meta_of(r, "count") == A


def test_implicit_flow_container_mutation():
    r = ok(
        "a = get_doc('a')\nlst = []\nd = {}\nif a == 'nope':\n    lst.append(1)\n    d['k'] = 1\n"
        "n = len(lst)\nk = 'k' in d",
        host=two_sources(),
    )
    assert meta_of(r, "lst") == A
    assert meta_of(r, "n") == A
    assert meta_of(r, "k") == A


def test_mutation_through_alias_is_tracked_on_the_shared_container():
    r = ok(
        "a = get_doc('a')\nstate = {'msgs': []}\nalias = state['msgs']\nif a == 'alpha':\n"
        "    alias.append('x')\nn = len(state['msgs'])",
        host=two_sources(),
    )
    assert meta_of(r, "n") == A


def test_tainted_keys_taint_dict_structure():
    r = ok(
        "a = get_doc('a')\nd = {}\nd[a] = 1\nn = len(d)\nks = list(d)\nhas = 'zzz' in d\ns = {a}\nm = len(s)",
        host=two_sources(),
    )
    for name in ("n", "ks", "has", "m"):
        assert meta_of(r, name) == A, name


def test_ternary_merges_condition():
    r = ok("a = get_doc('a')\nx = 1 if a == 'alpha' else 2", host=two_sources())
    assert meta_of(r, "x") == A


def test_boolop_merges_deciding_operands():
    r = ok("a = get_doc('a')\nx = a and 'y'\ny = '' or a\nz = 'lit' or a", host=two_sources())
    assert meta_of(r, "x") == A and meta_of(r, "y") == A
    assert meta_of(r, "z") == DEFAULT_META  # 'lit' decided alone


def test_comprehension_filter_taints_result_structure():
    r = ok("a = get_doc('a')\nl = [x for x in [1, 2, 3] if a == 'alpha']\nn = len(l)", host=two_sources())
    assert meta_of(r, "n") == A


def test_tool_arguments_carry_values_and_implicit_flow():
    host = two_sources()
    ok(
        "a = get_doc('a')\nsend_email(to='x@y', body=[a])\nif a == 'alpha':\n    send_email(to='z@y')",
        host=host,
    )
    first, second = host.calls[1], host.calls[2]
    assert first[1]["to"].meta == DEFAULT_META
    assert first[1]["body"].meta == A
    assert second[1]["to"].meta == A  # called only because of the tainted condition


def test_exception_meta_flows_into_handler():
    host = FakeHost({"get_doc": lambda a: ValueWithMeta("not-a-number", A)})
    r = ok(
        "d = get_doc('a')\ntry:\n    n = int(d)\nexcept ValueError as e:\n    msg = str(e)\n    flag = 1",
        host=host,
    )
    assert meta_of(r, "msg") == A
    assert meta_of(r, "flag") == A
    assert A in host.branches  # the except handler is a branch on the exception


def test_uncaught_error_reports_meta_of_its_message():
    host = FakeHost({"get_doc": lambda a: ValueWithMeta("injected text", A)})
    r = run("d = get_doc('a')\nraise ValueError(d)", host=host)
    assert r.status == "error" and r.error.meta == A


def test_tool_error_meta():
    host = FakeHost({"get_doc": lambda a: ToolError("boom", meta=B), "search": lambda a: ToolError("x")})
    r = ok(
        "a = 'k'\ntry:\n    get_doc(a)\nexcept ToolError as e:\n    m1 = str(e)\n"
        "try:\n    search(query=get_doc2)\nexcept Exception:\n    pass\n".replace("get_doc2", "'q'"),
        host=host,
    )
    assert meta_of(r, "m1") == B


def test_context_var_meta_propagates():
    cm = M("ctx", producers=("user",))
    r = ok(
        "s = initial_state\nx = s['a']\ny = x + 1",
        context_vars={"initial_state": ValueWithMeta({"a": 1}, cm)},
    )
    assert meta_of(r, "y") == cm and meta_of(r, "s") == cm


def test_final_return_value_meta_is_merged():
    r = ok("docs = [get_doc('a'), get_doc('b')]\nfinal_return_value = docs", host=two_sources())
    assert r.final_return_value.meta.tags == {"ta", "tb"}
    assert r.final_return_value.value == ["alpha", "beta"]


# ------------------------------------------------------------------------------ branching meta-policy
def deny_tag(tag):
    return lambda m: f"tag {tag} in a condition" if tag in m.tags else None


def test_check_branch_called_for_each_branch_kind():
    host = FakeHost()
    ok(
        "a = 1\nif a:\n    pass\nb = 1 if a else 2\nfor i in [1]:\n    pass\nc = [x for x in [1] if x]\n"
        "assert a",
        host=host,
    )
    # if, ternary, for source, comprehension source, comprehension filter, assert
    assert len(host.branches) == 6


def test_control_flow_violation_on_tainted_if():
    host = FakeHost(
        {"retrive_applicant_profile": lambda a: ValueWithMeta({"race": "European", "name": "A"}, M("RACE"))},
        branch=deny_tag("RACE"),
    )
    tools = {
        "retrive_applicant_profile": ToolSpec("retrive_applicant_profile", []),
        "send_email": ToolSpec("send_email", ["to", "body"], ["to"]),
    }
    src = (
        "p = retrive_applicant_profile()\nif p['race'] == 'European':\n    r = 'hr-1@gmail.com'\nelse:\n"
        "    r = 'hr-2@gmail.com'\nsend_email(to=r, body=str(p))"
    )
    res = run(src, host=host, tools=tools)
    assert res.status == "control_flow_violation"
    assert "Control flow violation" in res.error.message
    assert res.error.kind == "control_flow_violation" and res.error.lineno == 2
    assert [c[0] for c in host.calls] == ["retrive_applicant_profile"]
    # not branching on the profile is fine
    res = run(
        "p = retrive_applicant_profile()\nsend_email(to='hr@x.com', body=str(p))", host=host, tools=tools
    )
    assert res.status == "success"


def test_control_flow_violation_other_branch_kinds():
    host = FakeHost({"get_doc": lambda a: ValueWithMeta(["x", "y"], M("SECRET"))}, branch=deny_tag("SECRET"))
    for src in (
        "d = get_doc('a')\nx = 1 if d else 2",
        "d = get_doc('a')\nfor i in d:\n    pass",
        "d = get_doc('a')\nl = [i for i in d]",
        "d = get_doc('a')\nl = [i for i in [1, 2] if d]",
        "d = get_doc('a')\nd and send_email(to='x')",
    ):
        res = run(src, host=host)
        assert res.status == "control_flow_violation", src
    # a short-circuit without any possible tool call in later operands is not a branch
    assert run("d = get_doc('a')\nx = d and len(d)", host=host).status == "success"


def test_control_flow_violation_is_not_catchable():
    host = FakeHost({"get_doc": lambda a: ValueWithMeta("x", M("SECRET"))}, branch=deny_tag("SECRET"))
    res = run("d = get_doc('a')\ntry:\n    if d:\n        pass\nexcept Exception:\n    pass", host=host)
    assert res.status == "control_flow_violation"


def test_non_executable_results_flow_to_final_value():
    r = ok("d = get_doc('x')\nfinal_return_value = d['tool']")
    assert "__non_executable" in r.final_return_value.meta.tags
    assert r.final_return_value.meta == TOOL_META
