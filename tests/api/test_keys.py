"""/api/v1/keys/: list, create, retrieve, PATCH (validated like the dashboard and the headers), revoke, rotate;
another user's keys are 404, staff see everyone's."""

import pytest

from apikeys import selectors
from apikeys.models import ApiKey
from relay.config import preset_documents
from tests.factories import make_key

pytestmark = pytest.mark.django_db
BAD_POLICY = 'tool "send_email" {\n    hard deny when ;\n}'
GOOD_POLICY = 'tool "send_email" {\n    hard deny when "pii" in body.tags;\n}'


def test_create_returns_the_secret_once_and_it_authenticates(api, user):
    r = api.post("/api/v1/keys/", {"name": "agent", "arch": "single-llm"}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["secret"].startswith("sq-") and body["prefix"] == body["secret"][:12]
    assert body["arch"] == "single-llm" and body["is_active"] and body["owner"] == user.username
    assert body["features"] == {"agent_arch": "single-llm"}
    assert body["config"] == preset_documents("single-llm")["config"]
    principal = selectors.authenticate(body["secret"])
    assert principal is not None and principal.id == body["id"]
    again = api.get(f"/api/v1/keys/{body['id']}/").json()
    assert "secret" not in again and again["prefix"] == body["prefix"]
    assert "secret" not in api.get("/api/v1/keys/").json()["results"][0]
    assert ApiKey.objects.get(pk=body["id"]).secret_hash != body["secret"]


def test_create_with_documents_and_errors_name_the_field(api):
    r = api.post(
        "/api/v1/keys/",
        {
            "name": "tuned",
            "arch": "dual-llm",
            "content_logging": "full",
            "features": {
                "agent_arch": "dual-llm",
                "content_classifiers": [{"name": "pii_redaction", "threshold": 0.7}],
            },
            "policy": {"mode": "strict", "codes": {"code": GOOD_POLICY, "language": "sqrt"}},
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["content_logging"] == "full" and body["policy"]["codes"]["code"] == GOOD_POLICY
    assert body["features"]["content_classifiers"][0]["threshold"] == 0.7
    assert body["config"] == preset_documents("dual-llm")["config"]  # left out: the preset

    r = api.post("/api/v1/keys/", {"arch": "triple-llm"}, format="json")
    assert r.status_code == 400
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"name", "arch"}
    r = api.post(
        "/api/v1/keys/",
        {"name": "x", "arch": "dual-llm", "config": {"fsm": {"max_n_turns": "many"}}},
        format="json",
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "config"
    assert "fsm.max_n_turns" in r.json()["errors"][0]["message"]
    r = api.post("/api/v1/keys/", {"name": "x", "arch": "dual-llm", "features": [1, 2]}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "features"
    r = api.post(
        "/api/v1/keys/",
        {"name": "x", "arch": "dual-llm", "features": {"agent_arch": "single-llm"}},
        format="json",
    )
    assert r.status_code == 400 and "contradicts" in r.json()["errors"][0]["message"]
    r = api.post(
        "/api/v1/keys/",
        {"name": "x", "arch": "dual-llm", "policy": {"codes": {"code": BAD_POLICY, "language": "sqrt"}}},
        format="json",
    )
    assert r.status_code == 400
    error = r.json()["errors"][0]
    assert (error["field"], error["line"], error["column"]) == ("policy", 2, 20)
    assert ApiKey.objects.count() == 1
    r = api.post("/api/v1/keys/", "not json", content_type="application/json")
    assert r.status_code == 400 and r.json()["code"] == "parse_error"


def test_patch_validates_like_the_dashboard(api, user):
    key, _ = make_key(user, "dual-llm")
    url = f"/api/v1/keys/{key.pk}/"
    r = api.patch(url, {"policy": {"codes": {"code": BAD_POLICY, "language": "sqrt"}}}, format="json")
    assert r.status_code == 400
    body = r.json()
    assert body["errors"] == [
        {"field": "policy", "line": 2, "column": 20, "message": body["errors"][0]["message"]}
    ]
    assert body["errors"][0]["message"].startswith("codes.code: line 2, column 20: unexpected ';'")
    assert "policy" in body["detail"]
    key.refresh_from_db()
    assert key.policy == preset_documents("dual-llm")["policy"]  # nothing saved

    # The same document through the dashboard's validation gives the same message.
    from apikeys.validation import DocumentsInvalid, validate_documents

    with pytest.raises(DocumentsInvalid) as exc:
        validate_documents(
            "dual-llm", key.features, {"codes": {"code": BAD_POLICY, "language": "sqrt"}}, key.config
        )
    assert exc.value.errors["policy"] == [body["errors"][0]["message"]]

    r = api.patch(
        url,
        {"name": "renamed", "policy": {**key.policy, "codes": {"code": GOOD_POLICY, "language": "sqrt"}}},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["name"] == "renamed" and r.json()["policy"]["codes"]["code"] == GOOD_POLICY
    key.refresh_from_db()
    assert key.name == "renamed" and key.policy["codes"]["code"] == GOOD_POLICY

    # Unknown fields of a document are refused, naming the document and the field.
    r = api.patch(url, {"features": {"agent_arch": "dual-llm", "bogus": 1}}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "features"
    assert "bogus: unknown field" in r.json()["errors"][0]["message"]
    r = api.patch(url, {"name": ""}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "name"
    r = api.patch(url, {"content_logging": "everything"}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "content_logging"


def test_patch_arch_switches_preset_documents_and_keeps_the_code(api, user):
    key, _ = make_key(user, "dual-llm")
    api.patch(
        f"/api/v1/keys/{key.pk}/",
        {"policy": {**key.policy, "codes": {"code": GOOD_POLICY, "language": "sqrt"}}},
        format="json",
    )
    r = api.patch(f"/api/v1/keys/{key.pk}/", {"arch": "single-llm"}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    single = preset_documents("single-llm")
    assert body["arch"] == "single-llm" and body["features"]["agent_arch"] == "single-llm"
    assert body["config"] == single["config"]
    assert body["policy"]["presets"] == single["policy"]["presets"]
    assert body["policy"]["codes"]["code"] == GOOD_POLICY


def test_revoke_and_rotate(api, user):
    key, secret = make_key(user, "single-llm")
    r = api.post(f"/api/v1/keys/{key.pk}/rotate/")
    assert r.status_code == 200, r.content
    new_secret = r.json()["secret"]
    assert new_secret != secret and r.json()["id"] == key.pk and r.json()["prefix"] == new_secret[:12]
    assert selectors.authenticate(secret) is None
    assert selectors.authenticate(new_secret).id == key.pk

    r = api.post(f"/api/v1/keys/{key.pk}/revoke/")
    assert r.status_code == 200 and r.json()["is_active"] is False and r.json()["revoked_at"]
    assert selectors.authenticate(new_secret) is None
    assert api.post(f"/api/v1/keys/{key.pk}/revoke/").status_code == 200  # idempotent
    r = api.post(f"/api/v1/keys/{key.pk}/rotate/")
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    r = api.patch(f"/api/v1/keys/{key.pk}/", {"name": "again"}, format="json")
    assert r.status_code == 409 and "revoked" in r.json()["detail"]


def test_another_users_keys_are_404(api, other_api, user, other_user):
    mine, _ = make_key(user)
    theirs, _ = make_key(other_user)
    assert [k["id"] for k in api.get("/api/v1/keys/").json()["results"]] == [mine.pk]
    for method, path, data in [
        ("get", "", None),
        ("patch", "", {"name": "pwned"}),
        ("post", "revoke/", None),
        ("post", "rotate/", None),
    ]:
        r = getattr(api, method)(f"/api/v1/keys/{theirs.pk}/{path}", data, format="json")
        assert r.status_code == 404, (method, path, r.content)
        assert r.json() == {"detail": "No such key.", "code": "not_found", "errors": []}
    theirs.refresh_from_db()
    assert theirs.name != "pwned" and theirs.is_active
    assert api.get("/api/v1/keys/999999/").status_code == 404
    assert api.get("/api/v1/keys/abc/").status_code == 404
    assert api.get("/api/v1/keys/abc/").json()["code"] == "not_found"
    assert other_api.get(f"/api/v1/keys/{theirs.pk}/").status_code == 200


def test_staff_see_every_users_keys(staff_api, user, other_user):
    a, _ = make_key(user)
    b, _ = make_key(other_user)
    listed = {k["id"]: k["owner"] for k in staff_api.get("/api/v1/keys/").json()["results"]}
    assert listed == {a.pk: user.username, b.pk: other_user.username}
    assert staff_api.get(f"/api/v1/keys/{b.pk}/").status_code == 200


def test_list_is_paginated_and_slash_is_optional(api, user):
    for _ in range(3):
        make_key(user)
    page = api.get("/api/v1/keys/?page_size=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"] and page["previous"] is None
    second = api.get("/api/v1/keys/?page_size=2&page=2").json()
    assert len(second["results"]) == 1 and second["previous"]
    assert api.get("/api/v1/keys?page_size=2").status_code == 200
    r = api.get("/api/v1/keys/?page=9")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert api.delete(f"/api/v1/keys/{page['results'][0]['id']}/").status_code == 405
    assert api.get("/api/v1/nothing-here/").json()["code"] == "not_found"


def test_unexpected_errors_are_json(api, user, monkeypatch):
    from django.db import OperationalError

    from apikeys.api import keys as keys_api

    key, _ = make_key(user)

    def boom(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(keys_api.services, "do_revoke_api_key", boom)
    r = api.post(f"/api/v1/keys/{key.pk}/revoke/")
    assert r.status_code == 500 and r.json() == {
        "detail": "Internal server error.",
        "code": "server_error",
        "errors": [],
    }

    def gone(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(keys_api.services, "do_revoke_api_key", gone)
    r = api.post(f"/api/v1/keys/{key.pk}/revoke/")
    assert r.status_code == 503 and r.headers["Retry-After"] == "5" and r.json()["code"] == "unavailable"


def test_patch_limits_uses_the_dashboards_validation_and_never_shows_the_provider_key(api, user):
    key, _ = make_key(user, "single-llm")
    url = f"/api/v1/keys/{key.pk}/"
    assert api.get(url).json()["limits"]["rpm_limit"] is None
    r = api.patch(
        url,
        {
            "limits": {
                "rpm_limit": 60,
                "budget_usd": "12.5",
                "budget_period": "day",
                "allowed_models": ["gpt-5-mini", "openai/*"],
                "provider_key": "sk-stored",
            }
        },
        format="json",
    )
    assert r.status_code == 200, r.content
    limits = r.json()["limits"]
    assert (limits["rpm_limit"], limits["budget_usd"], limits["budget_period"]) == (60, "12.5", "day")
    assert limits["allowed_models"] == ["gpt-5-mini", "openai/*"] and limits["provider_key_set"] is True
    assert "sk-stored" not in r.content.decode()
    key.refresh_from_db()
    assert key.rpm_limit == 60 and key.budget_nano == 12_500_000_000 and key.encrypted_provider_key
    # only the fields given change; null clears one
    r = api.patch(url, {"limits": {"rpm_limit": None, "tpm_limit": 1000}}, format="json")
    assert r.status_code == 200 and r.json()["limits"]["rpm_limit"] is None
    assert r.json()["limits"]["budget_usd"] == "12.5" and r.json()["limits"]["tpm_limit"] == 1000
    # errors name the field; nothing is half-written with an invalid document in the same PATCH
    r = api.patch(url, {"limits": {"rpm_limit": 0}}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "limits.rpm_limit"
    r = api.patch(url, {"limits": {"bogus": 1}}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "limits.bogus"
    r = api.patch(
        url, {"limits": {"rpm_limit": 5}, "features": {"agent_arch": "single-llm", "bogus": 1}}, format="json"
    )
    assert r.status_code == 400
    key.refresh_from_db()
    assert key.rpm_limit is None
