"""Cedar as the second policy language, and the linter behind ``manage.py sqrt_check``."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from sqrt_helpers import V, compile_error, engine

from relay.meta import DEFAULT_META
from relay.sqrt import PolicyEngine, compile_policy
from relay.sqrt.cedar import CedarPolicy
from relay.sqrt.lint import lint_files
from relay.sqrt.lint import main as lint_main

CEDAR = """
permit(principal, action == Action::"read_file", resource);
@id("no-secrets")
forbid(principal, action == Action::"read_file", resource)
    when { context.arg_tags.path.contains("secret") };
permit(principal, action == Action::"send_email", resource)
    when { context has args && context.args has to && context.args.to like "*@corp.com" };
permit(principal, action == Action::"issue_refund", resource)
    when { context.session_tags.contains("final_attempt") };
permit(principal, action == Action::"parse_with_ai", resource);
permit(principal, action == Action::"count", resource) when { context.args.n > 3 };
"""


def cedar_engine(src=CEDAR, **kw):
    return PolicyEngine(compile_policy(src, "cedar"), **kw)


def test_cedar_mapping_and_verdicts():
    eng = cedar_engine()
    assert isinstance(eng.policy, CedarPolicy)
    assert eng.before_call("read_file", {"path": V("/a")}, DEFAULT_META).verdict == "hard_allowed"
    d = eng.before_call("read_file", {"path": V("/a", G=("secret",))}, DEFAULT_META)
    assert d.verdict == "hard_denied" and d.record["denied"][0]["policy"] == "no-secrets"
    assert "is denied by argument checking policies" in d.denial_message
    assert eng.before_call("send_email", {"to": V("a@corp.com")}, DEFAULT_META).verdict == "hard_allowed"
    assert eng.before_call("send_email", {"to": V("a@evil.com")}, DEFAULT_META).verdict == "hard_denied"
    assert eng.before_call("unknown_tool", {}, DEFAULT_META).verdict == "hard_denied"  # Cedar default deny
    assert eng.before_call("issue_refund", {}, V(0, G=("final_attempt",)).meta).verdict == "hard_allowed"
    assert eng.before_call("count", {"n": V(5)}, DEFAULT_META).verdict == "hard_allowed"


def test_cedar_errors_fail_closed_and_presets_still_apply():
    eng = cedar_engine()
    d = eng.before_call("count", {}, DEFAULT_META)  # context.args.n missing -> evaluation error
    assert d.verdict == "hard_denied"
    d = eng.before_call("parse_with_ai", {"q": V("x", G=("__llm_blocked",))}, DEFAULT_META)
    assert d.verdict == "hard_denied" and d.record["denied"][0]["policy"] == "enable_llm_blocked_tag"
    # values Cedar cannot represent are converted, not rejected
    d = eng.before_call(
        "read_file", {"path": V(1.5), "x": V(None), "y": V({"k": [1, None, 2**70]})}, DEFAULT_META
    )
    assert d.verdict == "hard_allowed"


def test_empty_cedar_program_abstains():
    eng = cedar_engine("// nothing yet\n")
    assert eng.before_call("anything", {}, DEFAULT_META).verdict == "soft_allowed"
    assert (
        cedar_engine("", presets={"default_allow": False}).before_call("x", {}, DEFAULT_META).verdict
        == "soft_denied"
    )
    r = eng.after_call("anything", {}, V("r", G=("t",)), DEFAULT_META)
    assert r.result_meta == V("r", G=("t",)).meta


def test_cedar_syntax_errors_have_positions():
    err = compile_error(
        "permit(principal, action, resource);\npermit(principal, action, resource)\n  when { context.a == 1 ;};",
        "cedar",
    )
    assert err.line == 3 and err.column > 1 and "Cedar" in err.message
    err = compile_error("permit(principal, action, resource)", "cedar")
    assert err.line == 1
    assert compile_policy("permit(principal, action, resource);", "cedar") is compile_policy(
        "permit(principal, action, resource);", "CEDAR"
    )


# ---------------------------------------------------------------- linter / sqrt_check


def test_lint_files(tmp_path: Path):
    good = tmp_path / "good.sqrt"
    good.write_text('tool "t" { must allow always; }\n')
    bad = tmp_path / "bad.sqrt"
    bad.write_text('tool "t" {\n  must deny }\n')
    ced = tmp_path / "p.cedar"
    ced.write_text("permit(principal, action, resource);")
    out = io.StringIO()
    failures = lint_files(
        [str(good), str(bad), "-", str(ced), str(tmp_path / "missing.sqrt")],
        out,
        stdin=io.StringIO('let x = {"a"};'),
    )
    lines = out.getvalue().splitlines()
    assert lines[0] == f"{good}: ok"
    assert lines[1] == f"{bad}:2:13: unexpected '}}' — expected one of: 'always', 'when'"
    assert lines[2] == "-: ok"
    assert lines[3] == f"{ced}: ok"
    assert lines[4].startswith(f"{tmp_path / 'missing.sqrt'}: cannot read file")
    assert failures == 2


def test_lint_main_exit_status(tmp_path: Path, capsys):
    good = tmp_path / "good.sqrt"
    good.write_text("")
    assert lint_main([str(good)]) == 0
    bad = tmp_path / "bad.sqrt"
    bad.write_text("let x")
    assert lint_main([str(good), str(bad)]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"{bad}:1:")


def test_sqrt_check_management_command(tmp_path: Path):
    if not Path("manage.py").exists():
        pytest.skip("run from the project root")
    bad = tmp_path / "bad.sqrt"
    bad.write_text('tool "t" { MUST deny always; }')
    proc = subprocess.run(
        [sys.executable, "manage.py", "sqrt_check", str(bad), "-"],
        input='tool "t" { must allow always; }',
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "Unknown command" in proc.stderr or "ImproperlyConfigured" in proc.stderr:
        pytest.skip("Django project not importable here")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{bad}:1:12: unexpected 'MUST' — expected one of: 'hard', 'must', 'priority', 'result', 'session', 'should', 'soft', '}}', a doc comment `///`",
        "-: ok",
    ]


def test_engine_without_policy_is_default_only():
    eng = engine(None)
    assert eng.before_call("x", {}, DEFAULT_META).verdict == "soft_allowed"
    r = eng.after_call("x", {}, V(1, G=("a",)), DEFAULT_META)
    assert r.result_meta == V(1, G=("a",)).meta and r.record is None
