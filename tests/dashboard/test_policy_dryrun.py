"""Dry-run of an edited policy and key versions: the services, the replay's correctness and the configure page's
endpoints (ownership, errors). Calls are recorded as the relay records them (``tests.policy_recording``)."""

import json

import pytest
from django.db import IntegrityError
from django.urls import reverse

from apikeys import services, versions
from apikeys.dryrun import do_dry_run, recorded_calls
from apikeys.models import ApiKey, KeyVersion, VersionSource
from apikeys.validation import DocumentsInvalid
from relay.policy_replay import RecordedCall, replay
from tests.factories import make_key
from tests.policy_recording import record_tool_calls

pytestmark = pytest.mark.django_db

DENY_MALLORY = 'tool "send_email" {\n    hard deny when to.value == "mallory@evil.example";\n}\n'
DENY_DELETE = 'tool "delete_file" {\n    hard deny always;\n}\n'


def sqrt(code: str) -> dict:
    return {"codes": {"code": code, "language": "sqrt"}}


def traffic(key):
    """Two sessions: mail to alice and mallory, a search, a delete; 3 of the 6 calls go to mallory."""
    first = record_tool_calls(
        key,
        [
            ("send_email", {"to": "alice@example.com", "body": "hi"}),
            ("send_email", {"to": "mallory@evil.example", "body": "secrets"}),
            ("search", {"q": "invoices"}),
        ],
    )
    second = record_tool_calls(
        key,
        [
            ("send_email", {"to": "mallory@evil.example", "body": "more"}),
            ("delete_file", {"path": "/tmp/x"}),
            ("send_email", {"to": "mallory@evil.example", "body": "again"}),
        ],
    )
    return first, second


def save(key, code, **kwargs):
    return services.do_update_api_key_config(
        key=key,
        arch=key.arch,
        features=key.features,
        policy={**key.policy, **sqrt(code)},
        config=key.config,
        **kwargs,
    )


# ------------------------------------------------------------------------------------------- versions (services)


def test_creation_and_each_changing_save_make_a_version(user):
    key, _ = make_key(user, arch="single-llm")
    assert [(v.number, v.source, v.saved_by) for v in versions.versions_of(key)] == [(1, "created", user)]
    save(key, DENY_DELETE)
    services.do_update_api_key_config(
        key=key, arch=key.arch, name="renamed", features=key.features, policy=key.policy, config=key.config
    )  # no configuration change: no version
    key.refresh_from_db()
    assert [v.number for v in versions.versions_of(key)] == [2, 1]
    assert key.current_version.number == 2 and key.current_version.policy == key.policy
    assert key.name == "renamed"


def test_a_failed_save_leaves_neither_the_key_nor_a_version(user):
    key, _ = make_key(user, arch="single-llm")
    with pytest.raises(DocumentsInvalid):
        save(key, 'tool "x" { hard deny }')
    assert KeyVersion.objects.filter(api_key=key).count() == 1


def test_version_and_save_are_atomic(user, monkeypatch):
    """A version that cannot be written rolls the save back: the key never holds an unversioned configuration."""
    key, _ = make_key(user, arch="single-llm")

    def broken(**kwargs):
        raise IntegrityError("simulated")

    monkeypatch.setattr(KeyVersion.objects, "create", broken)
    with pytest.raises(IntegrityError):
        save(key, DENY_DELETE)
    monkeypatch.undo()
    fresh = ApiKey.objects.get(pk=key.pk)
    assert "delete_file" not in json.dumps(fresh.policy)
    assert fresh.current_version.number == 1


def test_revert_makes_a_new_version_with_the_old_configuration(user):
    key, _ = make_key(user, arch="single-llm")
    original = dict(key.policy)
    save(key, DENY_DELETE)
    save(key, DENY_MALLORY)
    restored = services.do_revert_to_version(key=key, number=1, saved_by=user)
    key.refresh_from_db()
    assert (restored.number, restored.source, restored.reverted_from) == (4, VersionSource.REVERT, 1)
    assert key.policy == original and key.current_version_id == restored.pk
    assert [v.number for v in versions.versions_of(key)] == [4, 3, 2, 1]


def test_diff_shows_the_policy_lines_that_changed(user):
    key, _ = make_key(user, arch="single-llm")
    save(key, DENY_DELETE)
    save(key, DENY_MALLORY)
    old, new = versions.version_of(key, 2), versions.version_of(key, 3)
    lines = versions.diff_versions(old, new)
    added = [line.text for line in lines if line.kind == "add"]
    removed = [line.text for line in lines if line.kind == "remove"]
    assert '+tool "send_email" {' in added
    assert '-tool "delete_file" {' in removed
    assert all(line.kind != "add" or "features" not in line.text for line in lines)


# --------------------------------------------------------------------------------------------- dry-run (replay)


def test_a_policy_denying_x_reports_exactly_the_recorded_x_calls(user):
    key, _ = make_key(user, arch="single-llm")
    first, second = traffic(key)
    result = do_dry_run(key=key, policy=sqrt(DENY_MALLORY))
    assert result.replayed == 6 and result.not_replayable == 0
    denied = result.newly_denied
    assert sorted((c.call.session_id, c.call.seq) for c in denied) == sorted(
        [(first, 2), (second, 1), (second, 3)]
    )
    assert all(c.call.args["to"]["value"] == "mallory@evil.example" for c in denied)
    assert all(
        c.verdict == "hard_denied"
        and c.rule["rule"].startswith("hard deny when to.value ==")
        and c.rule["policy"] == "send_email"
        for c in denied
    )
    assert result.newly_allowed == []
    assert result.summary() == "would deny 3 of 6 recorded calls, in 2 sessions"


def test_a_looser_policy_reports_calls_denied_today_as_newly_allowed(user):
    key, _ = make_key(user, arch="single-llm")
    save(key, DENY_DELETE)
    traffic(key)
    result = do_dry_run(key=key, policy=sqrt(DENY_MALLORY))
    assert [(c.call.tool, c.verdict) for c in result.newly_allowed] == [("delete_file", "soft_allowed")]
    assert result.newly_allowed[0].rule["policy"] == "default_allow"
    assert (
        result.newly_allowed[0].call.rule["rule"] == "hard deny always;"
    )  # what decided it when it was made
    assert result.summary() == (
        "would deny 3 of 6 recorded calls, in 2 sessions; would allow 1 call denied today"
    )


def test_the_same_policy_changes_nothing_and_nothing_is_saved(user):
    key, _ = make_key(user, arch="single-llm")
    save(key, DENY_MALLORY)
    traffic(key)
    before = ApiKey.objects.values().get(pk=key.pk)
    result = do_dry_run(key=key, policy=key.policy)
    assert result.changes == [] and result.replayed == 6
    assert result.summary() == "would decide all 6 recorded calls as they were decided"
    assert ApiKey.objects.values().get(pk=key.pk) == before
    assert KeyVersion.objects.filter(api_key=key).count() == 2


def test_both_architectures_and_the_limit(user):
    single, _ = make_key(user, arch="single-llm")
    dual, _ = make_key(user, arch="dual-llm")
    record_tool_calls(dual, [("send_email", {"to": "mallory@evil.example"})])
    record_tool_calls(single, [("send_email", {"to": "mallory@evil.example"})] * 4)
    calls = recorded_calls(dual)
    assert [c.dual_llm for c in calls] == [True]
    assert (
        do_dry_run(key=dual, policy=sqrt(DENY_MALLORY))
        .summary()
        .startswith("would deny 1 of 1 recorded call,")
    )
    assert do_dry_run(key=single, policy=sqrt(DENY_MALLORY), limit=2).replayed == 2


def test_calls_recorded_without_arguments_are_counted_not_guessed(user):
    key, _ = make_key(user, arch="single-llm", content_logging="none")
    traffic(key)
    result = do_dry_run(key=key, policy=sqrt(DENY_MALLORY))
    assert (result.replayed, result.not_replayable, result.changes) == (0, 6, [])
    assert "6 calls recorded without arguments cannot be replayed" in result.summary()


def test_recorded_session_metadata_is_replayed():
    """A policy reading the session's tags sees the tags the call was made with."""
    code = 'tool "post" {\n    hard deny when "secret" in @session.tags;\n}\n'
    tagged = RecordedCall(
        session_id="s",
        seq=1,
        dual_llm=False,
        tool="post",
        args={"text": {"value": "x"}},
        session_meta={"tags": ["secret"]},
        control_meta=None,
        verdict="soft_allowed",
    )
    clean = RecordedCall(
        session_id="s",
        seq=2,
        dual_llm=False,
        tool="post",
        args={"text": {"value": "x"}},
        session_meta={"tags": []},
        control_meta=None,
        verdict="soft_allowed",
    )
    result = replay([tagged, clean], sqrt(code))
    assert [c.call.seq for c in result.newly_denied] == [1]


def test_a_guardrail_block_is_not_undone_by_a_looser_policy():
    blocked = RecordedCall(
        session_id="s",
        seq=1,
        dual_llm=False,
        tool="delete_file",
        args={},
        session_meta=None,
        control_meta=None,
        verdict="soft_allowed",
        blocked="URL blocked",
    )
    result = replay([blocked], sqrt(""))
    assert result.changes == [] and result.without_session_meta == 1


# ------------------------------------------------------------------------------------------ the page's endpoints


def test_dry_run_endpoint_returns_the_summary_and_rows(user_client, user):
    key, _ = make_key(user, arch="single-llm")
    first, _ = traffic(key)
    r = user_client.post(
        reverse("apikeys:dry-run", args=[key.pk]),
        {
            "name": key.name,
            "arch": key.arch,
            "content_logging": key.content_logging,
            "policy_code": DENY_MALLORY,
        },
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["summary"] == "would deny 3 of 6 recorded calls, in 2 sessions"
    assert {c["inspector_url"] for c in body["newly_denied"]} >= {f"/dashboard/sessions/{first}/#step-2"}
    assert "Newly denied" in body["html"] and "hard deny when to.value" in body["html"]
    assert ApiKey.objects.get(pk=key.pk).policy == key.policy  # nothing saved


def test_dry_run_endpoint_errors_name_the_field(user_client, user):
    key, _ = make_key(user, arch="single-llm")
    url = reverse("apikeys:dry-run", args=[key.pk])
    r = user_client.post(url, {"policy": "{not json"})
    assert r.status_code == 400 and "policy" in r.json()["errors"]
    r = user_client.post(url, {"policy": json.dumps(sqrt('tool "x" { hard deny }'))})
    assert r.status_code == 400 and "line 1" in r.json()["errors"]["policy"][0]
    r = user_client.post(url, {"name": key.name, "arch": key.arch, "policy_code": 'tool "x" { hard deny }'})
    assert r.status_code == 400 and "policy_code" in r.json()["errors"]
    r = user_client.post(url, {"policy": "{}", "limit": "0"})
    assert r.status_code == 400 and "limit" in r.json()["errors"]


def test_another_users_key_is_never_dry_run_nor_its_versions_shown(user_client, user, other_user, client):
    other, _ = make_key(other_user, arch="single-llm")
    record_tool_calls(other, [("send_email", {"to": "mallory@evil.example"})])
    assert user_client.post(reverse("apikeys:dry-run", args=[other.pk]), {"policy": "{}"}).status_code == 404
    assert user_client.get(reverse("apikeys:versions", args=[other.pk]) + "?diff=1").status_code == 404
    assert user_client.post(reverse("apikeys:revert", args=[other.pk, 1])).status_code == 404
    assert user_client.get(reverse("apikeys:configure", args=[other.pk])).status_code == 404
    client.logout()
    r = client.post(reverse("apikeys:dry-run", args=[other.pk]), {"policy": "{}"})
    assert r.status_code == 302 and "/login" in r["Location"]


def test_configure_page_lists_versions_diffs_and_reverts(user_client, user):
    key, _ = make_key(user, arch="single-llm")
    save(key, DENY_DELETE)
    page = user_client.get(reverse("apikeys:configure", args=[key.pk])).content.decode()
    assert 'id="policy-dryrun"' in page and 'id="policy-versions"' in page
    assert 'id="version-2"' in page and "Revert to v1" in page and "Revert to v2" not in page
    diff = user_client.get(reverse("apikeys:versions", args=[key.pk]) + "?diff=2").content.decode()
    assert 'class="diff-add">+tool &quot;delete_file&quot; {' in diff
    r = user_client.post(reverse("apikeys:revert", args=[key.pk, 1]))
    assert r.status_code == 302 and r["Location"].endswith("#policy-versions")
    key.refresh_from_db()
    assert key.current_version.number == 3 and key.current_version.reverted_from == 1
    assert "delete_file" not in json.dumps(key.policy)


def test_saving_the_configure_form_makes_a_version(user_client, user):
    key, _ = make_key(user, arch="single-llm")
    r = user_client.post(
        reverse("apikeys:configure", args=[key.pk]),
        {
            "name": key.name,
            "arch": key.arch,
            "content_logging": key.content_logging,
            "policy_code": DENY_DELETE,
        },
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    key.refresh_from_db()
    version = key.current_version
    assert (version.number, version.source, version.saved_by) == (2, "dashboard", user)
    assert version.policy == key.policy and "delete_file" in version.policy["codes"]["code"]


def test_the_inspector_names_the_version_that_decided_a_call(user_client, user):
    key, _ = make_key(user, arch="single-llm")
    save(key, DENY_DELETE)
    sid = record_tool_calls(key, [("delete_file", {"path": "/x"})])
    page = user_client.get(reverse("dashboard:session_detail", args=[sid])).content.decode()
    assert 'id="step-1"' in page
    assert 'data-policy-version="2"' in page and f"/keys/{key.pk}/configure/#version-2" in page
