"""POST /control/v1/validate-headers (control-api.md §15), through the live server with a bare HTTP client."""

import json

import httpx
import pytest
from sequrity.control import FeaturesHeader, FineGrainedConfigHeader, SecurityPolicyHeader

pytestmark = pytest.mark.live


def validate(relay, **fields):
    r = httpx.post(f"{relay}/control/v1/validate-headers", json=fields)
    assert r.status_code == 200, r.text
    return r.json()


def test_client_helpers_are_valid_and_normalised(relay):
    out = validate(
        relay,
        x_features=FeaturesHeader.dual_llm(toxicity_filter=True, url_blocker=True).dump_for_headers(),
        x_policy=SecurityPolicyHeader.dual_llm(codes='tool "x" { must allow always; }').dump_for_headers(),
        x_config=FineGrainedConfigHeader.dual_llm(max_n_turns=5, include_program=True).dump_for_headers(),
    )
    assert out["x_features"]["valid"] and out["x_features"]["normalized"]["agent_arch"] == "dual-llm"
    assert out["x_features"]["normalized"]["content_classifiers"][0]["name"] == "toxicity_filter"
    assert out["x_features"]["normalized"]["content_blockers"][0]["name"] == "url_blocker"
    assert out["x_policy"]["valid"] and out["x_policy"]["normalized"]["mode"] == "standard"
    assert (
        out["x_policy"]["normalized"]["auto_gen"] is False
        and out["x_policy"]["normalized"]["fail_fast"] is None
    )
    assert out["x_config"]["valid"] and out["x_config"]["normalized"]["fsm"]["max_n_turns"] == 5
    assert out["x_config"]["normalized"]["response_format"]["include_program"] is True
    assert out["x_config"]["normalized"]["prompt"] is None


def test_partial_policy_gets_defaults(relay):
    out = validate(relay, x_policy='{"codes": {"code": "let a = {};", "language": "sqrt"}}')
    norm = out["x_policy"]["normalized"]
    assert norm["codes"]["code"] == "let a = {};"
    assert (
        norm["presets"]["default_allow"] is True
        and norm["presets"]["branching_meta_policy"]["mode"] == "deny"
    )
    assert out["x_features"] is None and out["x_config"] is None


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("x_features", '{"agent_arch": "triple-llm"}', "agent_arch"),
        ("x_features", '{"unknown": 1}', "unknown"),
        ("x_policy", '{"mode": "ultra-strict"}', "mode"),
        ("x_policy", "{not json", "Invalid JSON"),
        ("x_policy", json.dumps({"codes": {"code": "tool {"}}), "line 1"),
        ("x_config", '{"fsm": {"max_n_turns": 0}}', "fsm.max_n_turns"),
        ("x_config", '{"fsm": {"nope": true}}', "fsm.nope"),
        ("x_config", '{"prompt": {"pllm": {"debug_info_level": "loud"}}}', "prompt.pllm.debug_info_level"),
    ],
)
def test_invalid_documents(relay, field, value, needle):
    out = validate(relay, **{field: value})[field]
    assert out["valid"] is False and out["normalized"] is None
    assert any(needle in e for e in out["errors"]), out["errors"]


def test_body_not_json(relay):
    r = httpx.post(f"{relay}/control/v1/validate-headers", content=b"{oops")
    assert r.status_code == 400 and "JSON" in r.json()["detail"]
