"""CallDecision.decided_by: the one rule that decided a call's final verdict (what a dry-run names)."""

from sqrt_helpers import check


def test_hard_deny_names_its_rule():
    d = check('tool "t" { hard deny when x.value == 1; soft allow always; }', "t", x=1)
    assert d.verdict == "hard_denied"
    assert d.decided_by["rule"].startswith("hard deny when x.value == 1")
    assert d.decided_by["enforcement"] == "hard"


def test_hard_allow_beats_soft_and_is_named():
    d = check('tool "t" { priority 100; soft deny always; }\ntool r"t" { hard allow always; }', "t")
    assert d.verdict == "hard_allowed"
    assert d.decided_by["rule"].startswith("hard allow")


def test_soft_verdict_named_by_top_priority_rule():
    d = check('tool "t" { priority 5; soft deny always; }\ntool r"t" { priority 7; soft allow always; }', "t")
    assert d.verdict == "soft_allowed"
    assert d.decided_by["rule"].startswith("soft allow")
    tie = check(
        'tool "t" { priority 7; soft allow always; }\ntool r"t" { priority 7; soft deny always; }', "t"
    )
    assert tie.verdict == "soft_denied"
    assert tie.decided_by["rule"].startswith("soft deny")


def test_default_policy_decides_when_nothing_matches():
    d = check('tool "other" { hard deny always; }', "t", kw={"presets": {"default_allow": False}})
    assert d.verdict == "soft_denied"
    assert d.decided_by["policy"] == "default_allow"
    assert check(None, "t").decided_by["policy"] == "default_allow"


def test_implicit_deny_is_named():
    d = check('tool "t" { hard allow when x.value == 1; }', "t", x=2)
    assert d.verdict == "hard_denied"
    assert "implicit deny" in d.decided_by["rule"]


def test_record_is_unchanged_by_decided_by():
    d = check('tool "t" { hard deny always; }', "t")
    assert set(d.record) == {"tool_name", "args", "final_verdict", "allowed", "denied"}
    assert d.decided_by == d.record["denied"][0]
