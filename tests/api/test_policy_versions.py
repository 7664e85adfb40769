"""Management API: a key's versions (list, one, diff, revert), the version each PATCH makes, and the dry-run of
an edited policy; ownership across tenants and errors naming the field."""

import pytest

from apikeys.models import KeyVersion
from tests.factories import make_key
from tests.policy_recording import record_tool_calls

pytestmark = pytest.mark.django_db

DENY_MALLORY = 'tool "send_email" {\n    hard deny when to.value == "mallory@evil.example";\n}\n'


def sqrt(code: str) -> dict:
    return {"codes": {"code": code, "language": "sqrt"}}


def test_patch_makes_a_version_saved_by_the_token_owner(api, user):
    key, _ = make_key(user, arch="single-llm")
    r = api.patch(f"/api/v1/keys/{key.pk}/", {"policy": sqrt(DENY_MALLORY)}, format="json")
    assert r.status_code == 200, r.content
    r = api.get(f"/api/v1/keys/{key.pk}/versions/")
    assert r.status_code == 200
    rows = r.json()["results"]
    assert [(v["number"], v["source"], v["current"], v["saved_by"]) for v in rows] == [
        (2, "api", True, user.username),
        (1, "created", False, user.username),
    ]
    assert rows[0]["policy"]["codes"]["code"] == DENY_MALLORY
    one = api.get(f"/api/v1/keys/{key.pk}/versions/1/").json()
    assert one["number"] == 1 and one["policy"]["codes"]["code"] == ""


def test_a_patch_that_fails_makes_no_version(api, user):
    key, _ = make_key(user, arch="single-llm")
    r = api.patch(f"/api/v1/keys/{key.pk}/", {"policy": sqrt('tool "x" { hard deny }')}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "policy"
    assert KeyVersion.objects.filter(api_key=key).count() == 1


def test_diff_and_revert(api, user):
    key, _ = make_key(user, arch="single-llm")
    api.patch(f"/api/v1/keys/{key.pk}/", {"policy": sqrt(DENY_MALLORY)}, format="json")
    diff = api.get(f"/api/v1/keys/{key.pk}/versions/2/diff/").json()
    assert (diff["old"], diff["new"]) == (1, 2)
    assert {"kind": "add", "text": '+tool "send_email" {'} in diff["lines"]
    assert '+tool "send_email" {' in diff["diff"]
    assert api.get(f"/api/v1/keys/{key.pk}/versions/1/diff/").status_code == 404
    assert api.get(f"/api/v1/keys/{key.pk}/versions/1/diff/?against=2").json()["old"] == 2
    r = api.post(f"/api/v1/keys/{key.pk}/versions/1/revert/")
    assert r.status_code == 201, r.content
    assert (r.json()["number"], r.json()["source"], r.json()["reverted_from"], r.json()["current"]) == (
        3,
        "revert",
        1,
        True,
    )
    assert api.get(f"/api/v1/keys/{key.pk}/").json()["policy"]["codes"]["code"] == ""
    assert api.post(f"/api/v1/keys/{key.pk}/versions/9/revert/").status_code == 404


def test_revoked_key_cannot_be_reverted(api, user):
    key, _ = make_key(user, arch="single-llm")
    api.post(f"/api/v1/keys/{key.pk}/revoke/")
    r = api.post(f"/api/v1/keys/{key.pk}/versions/1/revert/")
    assert r.status_code == 409


def test_dry_run_reports_the_calls_the_policy_would_deny(api, user):
    key, _ = make_key(user, arch="single-llm")
    sid = record_tool_calls(
        key, [("send_email", {"to": "alice@example.com"}), ("send_email", {"to": "mallory@evil.example"})]
    )
    r = api.post(f"/api/v1/keys/{key.pk}/dry-run/", {"policy": sqrt(DENY_MALLORY)}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["summary"] == "would deny 1 of 2 recorded calls, in 1 session"
    (row,) = body["newly_denied"]
    assert (row["session_id"], row["seq"], row["tool"], row["verdict"]) == (
        sid,
        2,
        "send_email",
        "hard_denied",
    )
    assert row["rule"]["policy"] == "send_email" and row["rule"]["rule"].startswith("hard deny when to.value")
    assert row["inspector_url"] == f"/dashboard/sessions/{sid}/#step-2"
    assert row["policy_version_recorded"] == 1
    assert api.get(f"/api/v1/keys/{key.pk}/").json()["policy"]["codes"]["code"] == ""  # nothing saved


def test_dry_run_errors_name_the_field(api, user):
    key, _ = make_key(user, arch="single-llm")
    url = f"/api/v1/keys/{key.pk}/dry-run/"
    r = api.post(url, {}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "policy"
    r = api.post(url, {"policy": sqrt('tool "x" {\n  hard deny }')}, format="json")
    err = r.json()["errors"][0]
    assert r.status_code == 400 and err["field"] == "policy" and (err["line"], err["column"]) == (2, 13)
    r = api.post(url, {"policy": {"mode": "nonsense"}}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "policy"
    r = api.post(url, {"policy": {}, "limit": 0}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "limit"
    r = api.post(url, data="{oops", content_type="application/json")
    assert r.status_code == 400 and r.json()["code"] == "parse_error"


def test_another_tenants_key_is_a_404_everywhere(api, other_user):
    other, _ = make_key(other_user, arch="single-llm")
    record_tool_calls(other, [("send_email", {"to": "mallory@evil.example"})])
    for method, path, body in (
        ("post", "dry-run/", {"policy": {}}),
        ("get", "versions/", None),
        ("get", "versions/1/", None),
        ("get", "versions/1/diff/?against=1", None),
        ("post", "versions/1/revert/", None),
    ):
        r = getattr(api, method)(f"/api/v1/keys/{other.pk}/{path}", body, format="json")
        assert r.status_code == 404, (path, r.status_code)
    assert KeyVersion.objects.filter(api_key=other).count() == 1


def test_without_a_token_is_401(client, user):
    key, _ = make_key(user, arch="single-llm")
    assert (
        client.post(
            f"/api/v1/keys/{key.pk}/dry-run/", {"policy": {}}, content_type="application/json"
        ).status_code
        == 401
    )
    assert client.get(f"/api/v1/keys/{key.pk}/versions/").status_code == 401
