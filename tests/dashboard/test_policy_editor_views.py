"""The policy editor's JSON endpoints: live diagnostics and the completion vocabulary (auth, ownership,
bad input named by field)."""

import json
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from sessions.models import RelaySession, SessionEvent
from tests.factories import UserFactory, make_key

pytestmark = pytest.mark.django_db

BROKEN = 'tool "send_email" {\n    hard deny when "pii" in body.tags\n    must allow always;\n}\n'


def diagnostics(client, key, body, json_body=True):
    url = reverse("apikeys:policy-diagnostics", args=[key.pk])
    if json_body:
        return client.post(url, json.dumps(body), content_type="application/json")
    return client.post(url, body)


@pytest.fixture
def owner_key(user):
    key, _ = make_key(user, arch="dual-llm")
    return key


def test_diagnostics_place_a_missing_semicolon_where_it_is_missing(user_client, owner_key):
    response = diagnostics(user_client, owner_key, {"code": BROKEN, "language": "sqrt"})
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["valid"] is False
    (d,) = body["diagnostics"]
    assert (d["line"], d["column"]) == (2, 38) and d["message"].startswith("Missing ';'")
    assert d["expected"][0] == "';'" and d["from"] == {"line": 2, "column": 34}


def test_diagnostics_of_a_valid_policy_and_of_cedar_from_a_form_body(user_client, owner_key):
    fixed = BROKEN.replace("body.tags\n", "body.tags;\n")
    assert diagnostics(user_client, owner_key, {"code": fixed}).json() == {"valid": True, "diagnostics": []}
    body = diagnostics(
        user_client,
        owner_key,
        {"code": "permit(principal action, resource);", "language": "cedar"},
        json_body=False,
    ).json()
    assert body["valid"] is False and body["diagnostics"][0]["language"] == "cedar"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "x", "language": "rego"}, "language"),
        ({"code": 5}, "code"),
        ({"code": "x" * 300_000}, "code"),
    ],
)
def test_bad_input_is_a_json_error_naming_the_field(user_client, owner_key, body, field):
    response = diagnostics(user_client, owner_key, body)
    assert response.status_code == 400
    assert response.json()["field"] == field and response.json()["error"]


def test_a_body_that_is_not_json_is_named(user_client, owner_key):
    url = reverse("apikeys:policy-diagnostics", args=[owner_key.pk])
    response = user_client.post(url, "{oops", content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "body"
    response = user_client.post(url, "[1]", content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "body"


def test_signed_out_gets_401_and_another_users_key_404(client, owner_key):
    assert diagnostics(client, owner_key, {"code": BROKEN}).status_code == 401
    assert client.get(reverse("apikeys:policy-vocabulary", args=[owner_key.pk])).status_code == 401
    stranger = Client()
    stranger.force_login(UserFactory())
    assert diagnostics(stranger, owner_key, {"code": BROKEN}).status_code == 404
    assert stranger.get(reverse("apikeys:policy-vocabulary", args=[owner_key.pk])).status_code == 404


def test_diagnostics_is_post_only_and_checks_csrf(user, owner_key):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)
    url = reverse("apikeys:policy-diagnostics", args=[owner_key.pk])
    assert csrf_client.get(url).status_code == 405
    assert csrf_client.post(url, {"code": BROKEN}).status_code == 403


def record_call(key, tool, args, session=None):
    session = session or RelaySession.objects.create(api_key=key, arch="dual-llm")
    SessionEvent.objects.create(
        event_id=uuid.uuid4(),
        session=session,
        type="tool_call",
        data={"tool": tool, "args": {a: {"value": 1, "meta": {}} for a in args}},
    )
    return session


def test_vocabulary_lists_the_keys_recorded_tools_and_their_arguments(user_client, owner_key, user):
    session = record_call(owner_key, "send_email", ["to", "body"])
    record_call(owner_key, "send_email", ["to", "subject"], session)
    record_call(owner_key, "read_file", ["path"], session)
    other, _ = make_key(UserFactory(), arch="dual-llm")
    record_call(other, "secret_tool", ["x"])
    SessionEvent.objects.create(
        event_id=uuid.uuid4(), session=session, type="tool_result", data={"tool": "zzz"}
    )
    body = user_client.get(reverse("apikeys:policy-vocabulary", args=[owner_key.pk])).json()
    first = body["tools"][0]
    assert (first["name"], first["calls"], first["args"][0]) == ("send_email", 2, "to")  # most used first
    assert sorted(first["args"]) == ["body", "subject", "to"]
    assert body["tools"][1] == {"name": "read_file", "calls": 1, "args": ["path"]}
    assert len(body["tools"]) == 2  # nothing from another key or from other event types


def test_configure_page_points_the_editor_at_its_endpoints(user_client, owner_key):
    page = user_client.get(reverse("apikeys:configure", args=[owner_key.pk])).content.decode()
    assert reverse("apikeys:policy-diagnostics", args=[owner_key.pk]) in page
    assert reverse("apikeys:policy-vocabulary", args=[owner_key.pk]) in page
    assert 'name="policy_code"' in page  # the textarea stays the form field (works without JavaScript)
