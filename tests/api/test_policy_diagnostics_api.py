"""/api/v1/policies/diagnostics: the policy editor's diagnostics for scripts and other editors."""

import pytest

from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

BROKEN = 'tool "send_email" {\n    hard deny when "pii" in body.tags\n    must allow always;\n}\n'


def test_diagnostics_place_a_missing_semicolon_and_name_what_fits(api):
    r = api.post("/api/v1/policies/diagnostics", {"code": BROKEN}, format="json")
    assert r.status_code == 200
    (d,) = r.json()["diagnostics"]
    assert r.json()["valid"] is False
    assert (d["line"], d["column"], d["from"], d["to"]) == (
        2,
        38,
        {"line": 2, "column": 34},
        {"line": 2, "column": 38},
    )
    assert d["message"].startswith("Missing ';'") and d["expected"][0] == "';'" and d["language"] == "sqrt"
    fixed = api.post(
        "/api/v1/policies/diagnostics/", {"code": BROKEN.replace("tags\n", "tags;\n")}, format="json"
    )
    assert fixed.json() == {"valid": True, "diagnostics": []}
    cedar = api.post(
        "/api/v1/policies/diagnostics",
        {"code": "permit(principal action, resource);", "language": "cedar"},
        format="json",
    ).json()
    assert cedar["diagnostics"][0]["language"] == "cedar"


def test_bad_input_names_the_field_and_auth_is_required(api):
    r = api.post("/api/v1/policies/diagnostics", {"code": "", "language": "rego"}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "language"
    r = api.post("/api/v1/policies/diagnostics", {}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "code"
    assert client_for().post("/api/v1/policies/diagnostics", {"code": ""}, format="json").status_code == 401


def test_the_schema_describes_it(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/api/v1/policies/diagnostics/" in schema.content.decode()
