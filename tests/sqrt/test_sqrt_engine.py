"""PolicyEngine: verdict combination (§6.11), presets and modes (§9), phases (§6.10), single-LLM (§6.12),
records (control-api §11.3-11.4), the manual wrapper (§7), value semantics (§6.3-6.6)."""

import json
import uuid

import pytest
from sqrt_helpers import M, S, V, check, engine, full_call, tags, verdict

from relay.meta import DEFAULT_META, UNIVERSAL, ValueWithMeta
from relay.sqrt import (
    VERDICTS,
    CallDecision,
    ManualWrapperError,
    PolicyEngine,
    ResultDecision,
    compile_policy,
    unwrap_manual_result,
)
from relay.sqrt.engine import normalize_presets

# ---------------------------------------------------------------- defaults and presets


def test_verdict_names():
    assert VERDICTS == ("hard_allowed", "soft_allowed", "soft_denied", "hard_denied")


@pytest.mark.parametrize(
    "presets, expected",
    [
        (None, "soft_allowed"),
        ({"default_allow": True, "default_allow_enforcement_level": "hard"}, "hard_allowed"),
        ({"default_allow": False}, "soft_denied"),
        ({"default_allow": False, "default_allow_enforcement_level": "hard"}, "hard_denied"),
        ({"default_allow": None, "default_allow_enforcement_level": None}, "soft_allowed"),
    ],
)
def test_default_policy(presets, expected):
    d = check(None, "get_internal_document", kw={"presets": presets}, doc="x")
    assert d.verdict == expected
    assert d.allowed == expected.endswith("allowed")
    entries = d.record["allowed"] + d.record["denied"]
    assert entries[0]["policy"] == "default_allow"


def test_normalize_presets():
    p = normalize_presets(
        {"default_allow": False, "branching_meta_policy": {"tags": ["b", "a", "a"]}, "unknown": 1}
    )
    assert p["default_allow"] is False and p["default_allow_enforcement_level"] == "soft"
    assert p["branching_meta_policy"] == {
        "mode": "deny",
        "producers": [],
        "tags": ["a", "b"],
        "consumers": [],
    }
    assert p["enable_llm_blocked_tag"] is True and p["llm_blocked_tag_enforcement_level"] == "hard"
    with pytest.raises(ValueError):
        normalize_presets({"default_allow_enforcement_level": "medium"})
    with pytest.raises(ValueError):
        PolicyEngine(None, mode="ultra-strict")
    with pytest.raises(TypeError):
        PolicyEngine("tool x;")


# ---------------------------------------------------------------- combination (§6.11)


def test_per_policy_rules():
    src = 'tool "t" { soft allow when x.value == 1; }'
    assert verdict(src, "t", x=1) == "soft_allowed"
    assert verdict(src, "t", x=2) == "soft_denied"  # implicit soft deny
    src = 'tool "t" { hard allow when x.value == 1; soft deny always; }'
    assert verdict(src, "t", x=1) == "hard_allowed"
    assert verdict(src, "t", x=2) == "soft_denied"  # a soft rule fired: no implicit deny
    src = 'tool "t" { hard allow when x.value == 1; }'
    assert verdict(src, "t", x=2) == "hard_denied"  # implicit hard deny, even with default_allow
    src = 'tool "t" { hard deny when x.value == 1; soft deny when x.value == 2; }'
    assert verdict(src, "t", x=3) == "soft_allowed"  # only deny rules, none fired: abstain
    src = 'tool "t" { soft deny when x.value == 1; soft allow always; soft deny always; }'
    assert verdict(src, "t", x=1) == "soft_denied" and verdict(src, "t", x=2) == "soft_allowed"


def test_final_verdict_over_policies():
    two = 'tool "t" { hard allow always; }\ntool r"t" { hard deny when x.value == 1; }'
    assert verdict(two, "t", x=1) == "hard_denied"
    assert verdict(two, "t", x=2) == "hard_allowed"
    soft = 'tool "t" { priority 5; soft deny always; }\ntool r"t" { priority 7; soft allow always; }'
    assert verdict(soft, "t") == "soft_allowed"
    tie = 'tool "t" { priority 7; soft deny always; }\ntool r"t" { priority 7; soft allow always; }'
    assert verdict(tie, "t") == "soft_denied"
    hard_beats_soft = 'tool "t" { priority 100; soft deny always; }\ntool r"t" { hard allow always; }'
    assert verdict(hard_beats_soft, "t") == "hard_allowed"
    negative = 'tool "t" { priority -1; soft allow always; }\ntool r"t" { soft deny always; }'
    assert verdict(negative, "t") == "soft_denied"
    last_priority_wins = (
        'tool "t" { priority 9; priority -9; soft deny always; }\ntool r"t" { soft allow always; }'
    )
    assert verdict(last_priority_wins, "t") == "soft_allowed"


def test_fail_fast_and_records():
    src = 'tool "t" { hard deny always; }\ntool "t" { /// second\n hard deny always; }\ntool "t" { soft allow always; }'
    d = check(src, "t")
    assert len(d.record["denied"]) == 1 and d.record["allowed"] == []
    d = check(src, "t", kw={"fail_fast": False})
    assert len(d.record["denied"]) == 2 and d.record["denied"][1]["description"] == "second"
    assert d.record["allowed"][0]["rule"] == "soft allow always;"
    assert d.verdict == "hard_denied"


def test_record_shape_and_denial_message():
    src = 'tool "send_email" { /// no spam\n hard deny when to.value in {"spam@evil.com"}; }'
    d = check(src, "send_email", to=V("spam@evil.com", G=("t",)), n=V(3))
    assert isinstance(d, CallDecision)
    assert set(d.record) == {"tool_name", "args", "final_verdict", "allowed", "denied"}
    assert d.record["tool_name"] == "send_email" and d.record["final_verdict"] == "hard_denied"
    assert d.record["args"]["to"] == {
        "value": "spam@evil.com",
        "meta": {"tags": ["t"], "consumers": ["*"], "producers": []},
    }
    assert d.record["denied"] == [
        {
            "policy": "send_email",
            "rule": 'hard deny when to.value in {"spam@evil.com"};',
            "enforcement": "hard",
            "description": "no spam",
        }
    ]
    text = json.dumps(d.record)
    assert '"denied": [{' in text
    msg = d.denial_message
    assert msg.startswith("Tool call to 'send_email' is denied by argument checking policies. Context: {")
    assert (
        "'value_type': 'str'" in msg
        and "'value_type': 'int'" in msg
        and "'final_verdict': 'hard_denied'" in msg
    )
    soft = check('tool "t" { soft deny always; }', "t")
    assert soft.verdict == "soft_denied" and "'final_verdict': 'soft_denied'" in soft.denial_message


def test_runtime_error_fails_closed():
    src = f'tool "t" {{ soft allow when x.value == 1; }} // {uuid.uuid4()}'
    pol = compile_policy(src)

    def boom(env):
        raise RuntimeError("kaput")

    pol.tools[0].soft[0].fn = boom
    pol.tools[0].finalize()
    d = PolicyEngine(pol).before_call("t", {"x": V(1)}, DEFAULT_META)
    assert d.verdict == "hard_denied"
    assert "kaput" in d.record["denied"][0]["error"]


# ---------------------------------------------------------------- phases (§6.10)


def test_session_before_runs_before_checks_and_persists():
    src = """
tool "t" {
    session before { @tags |= {"seen"}; x.tags |= {"checked"}; }
    hard deny when "seen" in @tags and x.tags overlaps {"checked"};
}
"""
    d = check(src, "t", x=V(1))
    assert d.verdict == "hard_denied" and tags(d.session_meta) == {"seen"}
    assert tags(d.arg_meta_updates["x"]) == {"checked"}


def test_result_phase_sees_previous_updates_and_arg_targets():
    src = """
tool "t" {
    result {
        @tags |= {"one"};
        when @tags overlaps {"one"} { @tags |= {"two"}; x.tags |= {"used"}; }
        @session.tags |= @result.tags;
    }
    session after { when x.tags overlaps {"used"} { @producers |= {"after"}; } }
}
tool r"t" -> @tags |= {"three"};
"""
    eng = engine(src)
    d, r = full_call(eng, "t", {"x": V(1, G=("in",))})
    assert isinstance(r, ResultDecision)
    assert tags(r.result_meta) == {"in", "one", "two", "three", "__non_executable"}
    assert tags(r.session_meta) == {"in", "one", "two", "__non_executable"}  # copied before "three"
    assert tags(r.arg_meta_updates["x"]) == {"in", "used"}
    assert r.session_meta.producers == {"after"} and r.record is None


def test_result_and_session_accessors_before_the_call():
    src = """
tool "t" {
    hard deny when @result.consumers is empty and @result.value == "x";
    soft deny when @result.tags is empty and @tags overlaps {"s"};
}
"""
    # @result fields are {} and @result.value is null during checks; @tags means @session.tags
    assert verdict(src, "t", S("s")) == "soft_denied"
    assert verdict(src, "t") == "soft_allowed"


def test_missing_argument_is_null_with_default_meta():
    src = 'tool "t" { hard deny when x.value == y.value and x.consumers is universal and x.tags is empty; }'
    assert verdict(src, "t") == "hard_denied"
    assert verdict(src, "t", x=1) == "soft_allowed"


def test_tool_matching_order_exact_and_regex():
    src = """
tool r"^t.*" -> @tags = {"first"};
tool "t1" -> @tags |= {"second"};
tool r"t1" -> @tags |= {"third"};
tool r"x" -> @tags |= {"never"};
"""
    _, r = full_call(engine(src), "t1", {})
    assert tags(r.result_meta) == {"first", "second", "third"}
    pol = compile_policy(src)
    assert [t.display for t in pol.match("t1")] == ['r"^t.*"', "t1", 'r"t1"']
    assert pol.match("t1") is pol.match("t1")
    assert [t.display for t in pol.match("t2")] == ['r"^t.*"']


# ---------------------------------------------------------------- value semantics (§6.4-6.6)


@pytest.mark.parametrize(
    "left, right, equal",
    [
        ("x.value", "1", True),
        ("x.value", "1.0", True),
        ("x.value", "true", False),
        ("x.value", '"1"', False),
        ("x.value", 'd"2023-10-01T00:00:00Z"', False),
    ],
)
def test_value_equality(left, right, equal):
    src = f'tool "t" {{ hard deny when {left} == {right}; }}'
    assert (verdict(src, "t", x=1) == "hard_denied") == equal


def test_structural_and_datetime_equality():
    src = 'tool "t" { hard deny when x.value == y.value; }'
    assert verdict(src, "t", x=[1, {"a": "b"}], y=[1.0, {"a": "b"}]) == "hard_denied"
    assert verdict(src, "t", x=[1, True], y=[1, 1]) == "soft_allowed"
    assert verdict(src, "t", x=None, y=None) == "hard_denied"
    dt = 'tool "t" { hard deny when x.value == d"2023-10-01T00:00:00Z"; }'
    assert verdict(dt, "t", x="2023-10-01T02:00:00+02:00") == "hard_denied"
    assert verdict(dt, "t", x=1696118400) == "hard_denied"
    assert verdict(dt, "t", x="2023-10-01") == "hard_denied"  # naive = UTC


def test_membership_in_meta_sets_and_number_elements():
    src = 'tool "t" { hard deny when x.value in y.tags; soft deny when x.value in {1, 2.5}; }'
    assert verdict(src, "t", x="a", y=V(0, G=("a",))) == "hard_denied"
    assert verdict(src, "t", x="a", y=V(0, G=("*",))) == "hard_denied"
    assert verdict(src, "t", x=2.5, y=V(0)) == "soft_denied"
    assert verdict(src, "t", x=True, y=V(0)) == "soft_allowed"  # booleans are not numbers
    assert verdict('tool "t" { hard deny when "pii" in d.tags; }', "t", d=V(0, G=("pii",))) == "hard_denied"


def test_matcher_sets_in_set_comparisons():
    src = r"""
tool "t" { hard deny when x.tags subset of {str like w"tool/*", "x"}; }
tool "u" { hard deny when x.tags superset of {r"^a.*", "z"}; }
tool "v" { hard deny when x.tags overlaps {str matching r"b+"}; }
"""
    assert verdict(src, "t", x=V(0, G=("tool/a", "x"))) == "hard_denied"
    assert verdict(src, "t", x=V(0, G=("tool/a", "y"))) == "soft_allowed"
    assert verdict(src, "u", x=V(0, G=("abc", "z"))) == "hard_denied"
    assert verdict(src, "u", x=V(0, G=("z",))) == "soft_allowed"
    assert verdict(src, "v", x=V(0, G=("bbb",))) == "hard_denied"
    assert verdict(src, "v", x=V(0, G=("*",))) == "hard_denied"


# ---------------------------------------------------------------- modes and branching (§9.4, §9.6)


def test_strict_mode_enforces_consumers():
    kw = {"mode": "strict"}
    assert verdict(None, "send_email", kw=kw, body=V("b", C=("internal",))) == "hard_denied"
    assert verdict(None, "send_email", kw=kw, body=V("b", C=("send_email",))) == "soft_allowed"
    assert verdict(None, "send_email", kw=kw, body=V("b")) == "soft_allowed"
    assert verdict(None, "send_email", body=V("b", C=("internal",))) == "soft_allowed"  # standard


def test_check_branch_modes():
    ne = M(G=("__non_executable",))
    assert engine(None).check_branch(ne) is None
    assert engine(None, mode="custom").check_branch(ne) is None
    assert "Control flow violation" in engine(None, mode="strict").check_branch(ne)
    assert engine(None, mode="strict", dual_llm=False).check_branch(ne) is None
    allow = engine(None, mode="custom", presets={"branching_meta_policy": {"mode": "allow", "tags": ["ok"]}})
    assert allow.check_branch(M(G=("ok",))) is None
    assert allow.check_branch(DEFAULT_META) is None
    assert "Control flow violation" in allow.check_branch(M(G=("ok", "bad")))
    cons = engine(
        None, mode="custom", presets={"branching_meta_policy": {"mode": "allow", "consumers": ["a"]}}
    )
    assert "Control flow violation" in cons.check_branch(DEFAULT_META)  # Universal passes only with "*"
    assert cons.check_branch(M(C=("a",))) is None
    deny_prod = engine(None, mode="custom", presets={"branching_meta_policy": {"producers": ["web"]}})
    assert "Control flow violation" in deny_prod.check_branch(M(P=("web", "x")))
    assert deny_prod.check_branch(M(P=("x",))) is None


# ---------------------------------------------------------------- single-LLM (§6.12)


def test_single_llm():
    src = """
tool "send" { hard deny when body.tags overlaps {"secret"}; hard deny when to.value == "evil"; }
tool "fetch" -> session @tags |= @result.tags;
tool "post_public" { must deny when "saw_secret" in @session.tags; }
tool "read_secret" -> session @tags |= {"saw_secret"};
tool "w" { result { x.tags |= {"nope"}; } }
"""
    eng = engine(src, dual_llm=False)
    # arguments carry the metadata the relay gives them: default, plus tags its guardrails found
    assert eng.before_call("send", {"body": V("b")}, DEFAULT_META).verdict == "soft_allowed"
    assert eng.before_call("send", {"body": V("b", G=("secret",))}, DEFAULT_META).verdict == "hard_denied"
    assert eng.before_call("send", {"to": V("evil")}, DEFAULT_META).verdict == "hard_denied"
    assert eng.initial_result_meta({"a": V(1, G=("x",))}) == DEFAULT_META
    wrapper = {
        "value": "v",
        "meta": {"producers": [], "consumers": ["*"], "tags": ["secret"]},
        "is_sequrity_var": True,
    }
    _, r = full_call(eng, "fetch", {}, wrapper=wrapper)
    assert tags(r.result_meta) == {"secret"} and tags(r.session_meta) == {"secret"}
    _, r = full_call(eng, "read_secret", {})
    assert eng.before_call("post_public", {}, r.session_meta).verdict == "hard_denied"
    _, r = full_call(eng, "w", {"x": V(1)})
    assert r.arg_meta_updates == {}
    blocked = V("q", G=("__llm_blocked",))
    assert eng.before_call("parse_with_ai", {"query": blocked}, DEFAULT_META).verdict == "hard_denied"


# ---------------------------------------------------------------- manual wrapper (§7)


def _wrapper(**over):
    w = {
        "value": {"k": 1},
        "meta": {"producers": ["p"], "consumers": ["c"], "tags": ["t"]},
        "is_sequrity_var": True,
    }
    w.update(over)
    return w


def test_unwrap_manual_result_modes():
    initial = M(P=("a",), G=("__non_executable",))
    value, meta = unwrap_manual_result(_wrapper(), initial)
    assert value == {"k": 1}
    assert meta == M(P=("a", "p"), C=("c",), G=("__non_executable", "t"))
    assert unwrap_manual_result(_wrapper(combine_meta="merge"), initial)[1] == meta
    assert unwrap_manual_result(_wrapper(combine_meta=None), initial)[1] == meta
    assert unwrap_manual_result(_wrapper(combine_meta="replace"), initial)[1] == M(
        P=("p",), C=("c",), G=("t",)
    )
    assert unwrap_manual_result(_wrapper(combine_meta="ignore"), initial) == ({"k": 1}, initial)
    star = _wrapper(meta={"producers": [], "consumers": ["*"], "tags": []}, combine_meta="replace")
    assert unwrap_manual_result(star, initial)[1].consumers is UNIVERSAL


@pytest.mark.parametrize(
    "decoded",
    ["text", 3, None, [1], {"value": 1}, _wrapper(is_sequrity_var="true"), _wrapper(is_sequrity_var=1)],
)
def test_not_a_wrapper(decoded):
    initial = M(G=("x",))
    assert unwrap_manual_result(decoded, initial) == (decoded, initial)


@pytest.mark.parametrize(
    "bad",
    [
        {"meta": {"producers": [], "consumers": [], "tags": []}, "is_sequrity_var": True},
        _wrapper(meta=None),
        _wrapper(meta={"producers": [], "consumers": []}),
        _wrapper(meta={"producers": "p", "consumers": [], "tags": []}),
        _wrapper(meta={"producers": [1], "consumers": [], "tags": []}),
        _wrapper(combine_meta="append"),
    ],
)
def test_malformed_wrapper(bad):
    with pytest.raises(ManualWrapperError):
        unwrap_manual_result(bad, DEFAULT_META)


def test_replace_can_drop_non_executable_and_results_feed_policies():
    src = 'tool "fetch" -> @tags |= {"fetched"};\ntool "send" { hard deny when "fetched" in body.tags; }'
    eng = engine(src)
    w = {
        "value": "v",
        "meta": {"producers": [], "consumers": ["*"], "tags": []},
        "is_sequrity_var": True,
        "combine_meta": "replace",
    }
    _, r = full_call(eng, "fetch", {}, wrapper=w)
    assert tags(r.result_meta) == {"fetched"}
    body = ValueWithMeta("v", r.result_meta)
    assert eng.before_call("send", {"body": body}, DEFAULT_META).verdict == "hard_denied"


def test_control_context_is_part_of_args_aggregations():
    """A call decided by tool data but without arguments still shows that data to ``@args`` rules."""
    pe = engine('tool "ping" { hard deny when @args.producers overlaps {"inbox"}; }')
    tainted = M(P=("inbox",))
    assert pe.before_call("ping", {}, DEFAULT_META).verdict == "soft_allowed"
    assert pe.before_call("ping", {}, DEFAULT_META, tainted).verdict == "hard_denied"
    assert pe.before_call("ping", {}, DEFAULT_META, DEFAULT_META).verdict == "soft_allowed"
