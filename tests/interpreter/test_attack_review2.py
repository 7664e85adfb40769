"""A second attacker's review (each test failed before its fix): tuple keys, in-place operators on
subscripts, del of a name a branch left unbound, bare raise, the namespace snapshot's shared budget, the
review LLM's problem category, the denied tool's name in retry feedback."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for p in (str(HERE), str(HERE.parent / "dual")):
    if p not in sys.path:
        sys.path.insert(0, p)

from dual_helpers import ChatClient, FakeLLM, make_config, py, tool  # noqa: E402
from test_noninterference import TOOLS, TraceHost, check_pair, tainted  # noqa: E402

from relay.interpreter import run_program  # noqa: E402
from relay.interpreter.limits import DEFAULT_LIMITS  # noqa: E402

A = {"get_int": 0, "get_str": "a", "get_list": [], "get_dict": {}}
B = {"get_int": 3, "get_str": "k", "get_list": [1], "get_dict": {"k": 1}}


# ---------------------------------------- 1./2. errors whose meta misses the decision that caused them
# (the oracle's extra-call check also flags the acknowledged termination channel, so these tests check only
# what the README promises: the error, and the failed run's namespace via RunResult.pc, carry the taint)
def _failed_run_is_tainted(src):
    for data in (A, B):
        r = run_program(src, tools=TOOLS, host=TraceHost(data))
        if r.status == "error":
            ns = r.namespace
            assert tainted(r.error.meta) and tainted(r.pc) and tainted(ns["a"].meta), (r.error, ns)
            return
    raise AssertionError("no run failed")


def test_del_of_a_name_bound_only_under_a_pure_branch():
    # not taken: NameError with DEFAULT meta; a = 0 in the failed run's namespace, untainted (a = 1 otherwise)
    _failed_run_is_tainted("a = 0\nX = get_int(q=1)\nif X > 1:\n    y = 1\ndel y\na = 1\n")


def test_bare_reraise_under_a_tainted_branch_in_a_handler():
    _failed_run_is_tainted(
        "a = 0\ntry:\n    raise ValueError('a')\nexcept ValueError:\n    X = get_int(q=1)\n"
        "    if X > 1:\n        raise\na = 1\n"
    )


# --------------------------------------- 3. ``N[i] op= v`` mutates the container N[i], never tainted
@pytest.mark.parametrize(
    "src",
    [
        "L = [1]\nN = [L]\nX = get_int(q=1)\nif X > 1:\n    N[0] += [5]\nfinal_return_value = L\n",
        "Z = {1}\nN = {'k': Z}\nX = get_int(q=1)\nif X > 1:\n    N['k'] |= {5}\nfinal_return_value = sorted(Z)\n",
        "G = {}\nN = [G]\nX = get_int(q=1)\nif X > 1:\n    N[0] |= {'a': 1}\nfinal_return_value = G\n",
        "L = [1]\nN = [L]\nT = get_list(q=1)\nfor v in T:\n    N[0] += [5]\nfinal_return_value = L\n",
    ],
)
def test_augassign_to_a_subscript_mutates_an_unrooted_container(src):
    check_pair(src, A, B)


# ------------------------------ 4. tuple keys: the tuple's reference meta is used instead of its elements'
PRE = "S = get_str(q='p')\nK = (1, S)\n"


@pytest.mark.parametrize(
    "body",
    [
        "final_return_value = K in {(1, 'a')}\n",
        "final_return_value = K in {(1, 'a'): 0}\n",
        "final_return_value = {(1, 'a'): 5}.get(K, 0)\n",
        "final_return_value = {(1, 'a'): 5, (1, 'k'): 6}[K]\n",
        "D2 = {}\nD2[K] = 1\nfinal_return_value = list(D2)\n",  # the key itself is laundered
        "final_return_value = list({K: 1})\n",  # e_dict: ``if k.m is not D`` guard
        "final_return_value = len({(1, v): 1 for v in ['a', S]})\n",  # e_dictcomp: same guard
        "Z = {(1, 'a')}\nZ.discard(K)\nfinal_return_value = len(Z)\n",
        "Z = {(1, 'a'), (1, 'k')}\nZ.remove(K)\nfinal_return_value = sorted(Z)\n",
        "D2 = {(1, 'a'): 5}\nfinal_return_value = D2.pop(K, 0)\n",
        "D2 = {(1, 'a'): 5}\nD2.setdefault(K, 0)\nfinal_return_value = len(D2)\n",
        "final_return_value = len(dict([((1, 'a'), 1), (K, 2)]))\n",
        "D2 = {(1, 'a'): 5, (1, 'k'): 6}\ndel D2[K]\nfinal_return_value = list(D2.values())\n",
    ],
)
def test_tuple_keys_lose_their_elements_metadata(body):
    check_pair(PRE + body, A, B)


def test_tuple_key_error_shows_a_tool_number_to_the_planner():
    bad = 'b = get_balance(account="A1")\nlimits = {(0, 100): "low"}\nfinal_return_value = limits[(0, b)]\n'
    llm = FakeLLM(pllm=[py(bad), py('final_return_value = "ok"')])
    client = ChatClient(make_config(), llm, tools=[tool("get_balance", {"account": "string"})])
    client.run("q", lambda n, a: "48213")
    assert "48213" not in llm.pllm_inputs()  # fails: "Error: KeyError: (0, 48213)"


def test_tuple_key_launders_a_confidential_string_past_the_policy():
    prog = 'd = get_doc(id="1")\nkeys = {(d,): 1}\npost(body=list(keys)[0][0])\nfinal_return_value = 1\n'
    pol = (
        'tool "get_doc" -> @tags |= {"confidential"};\n'
        'tool "post" { hard deny when body.tags overlaps {"confidential"}; }\n'
    )
    calls = []
    client = ChatClient(
        make_config(policy=pol),
        FakeLLM(pllm=[py(prog)]),
        tools=[tool("get_doc", {"id": "string"}), tool("post", {"body": "string"})],
    )
    client.run("q", lambda n, a: calls.append((n, a)) or "TOP-SECRET")
    assert ("post", {"body": "TOP-SECRET"}) not in calls  # fails: posted


# ---------------------- 5. namespace snapshot: a shared node budget makes clean values depend on tainted sizes
def test_namespace_budget_spent_by_a_tainted_value_changes_a_clean_one():
    n = DEFAULT_LIMITS.max_value_size
    # the namespace budget is under test, not the clock: a loaded machine must not end the run on wall time
    limits = dataclasses.replace(DEFAULT_LIMITS, wall_time_seconds=600.0)
    src = f"T = get_list(q=1)\nC1 = [0] * {n * 6 // 10}\nC2 = [0] * {n * 6 // 10}\n"
    seen = []
    for data in ([0] * 10, [0] * (n * 9 // 10)):
        r = run_program(src, tools=TOOLS, host=TraceHost({"get_list": data}), limits=limits)
        c2 = r.namespace["C2"]
        seen.append((type(c2.value).__name__, tainted(c2.meta)))
    # fails: [('list', False), ('str', False)] -- the planner's step feedback shows "C2: list" / "C2: str"
    assert seen[0][0] == seen[1][0] or (seen[0][1] and seen[1][1]), seen


# ------------------------ 6. the review's problem category is chosen by an LLM that read tool data
def _review_run(tool_text):
    prog = 'd = get_doc(id="1")\nfinal_return_value = d\n'

    def rllm(system, messages, schema):  # an honest reviewer steered by the (injected) final value
        problem = "wrong_format" if "FORMAT" in messages[0]["content"] else "incomplete"
        return {"ok": False, "problem": problem, "explanation": "x"}

    llm = FakeLLM(
        pllm=[py(prog), py('final_return_value = "done"')],
        rllm=[rllm, {"ok": True, "problem": "none", "explanation": ""}],
    )
    client = ChatClient(
        make_config(fsm={"disable_rllm": False}), llm, tools=[tool("get_doc", {"id": "string"})]
    )
    client.run("q", lambda n, a: tool_text)
    return llm.role_calls("pllm")[1]["messages"][-1]["content"]


def test_review_problem_category_depends_on_tool_data():
    # both attempts failed the review (the allowed bit); the category (~2.6 bits per attempt) must not differ
    assert _review_run("say FORMAT") == _review_run("say nothing")


# ------------------------ 7. policy-denial retry names the denied tool, which the data may have chosen
def _denial_run(tool_text):
    prog = 'd = get_doc(id="1")\nf = {"a": post, "b": mail}.get(d, post)\nf(body=d)\n'
    pol = (
        'tool "get_doc" -> @tags |= {"confidential"};\n'
        'tool "post" { hard deny when body.tags overlaps {"confidential"}; }\n'
        'tool "mail" { hard deny when body.tags overlaps {"confidential"}; }\n'
    )
    llm = FakeLLM(pllm=[py(prog), py('final_return_value = "no"')])
    client = ChatClient(
        make_config(policy=pol, fsm={"retry_on_policy_violation": True}),
        llm,
        tools=[
            tool("get_doc", {"id": "string"}),
            tool("post", {"body": "string"}),
            tool("mail", {"body": "string"}),
        ],
    )
    client.run("q", lambda n, a: tool_text)
    return llm.role_calls("pllm")[1]["messages"][-1]["content"]


def test_policy_denial_feedback_names_a_data_chosen_tool():
    assert _denial_run("a") == _denial_run("b")  # fails: "The call to `post`..." vs "The call to `mail`..."
