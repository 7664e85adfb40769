"""/api/v1/policies/validate and /generate, throttling (429 + Retry-After), the schema and the docs page."""

import re

import pytest
from django.test import override_settings

from apikeys import services
from apikeys.models import ApiKey
from tests import fake_upstream as fu
from tests.api.conftest import client_for, rest_settings, token_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_validate_sqrt_and_cedar(api):
    ok = api.post(
        "/api/v1/policies/validate", {"code": 'tool "x" {\n    hard deny always;\n}'}, format="json"
    )
    assert ok.status_code == 200 and ok.json() == {"valid": True, "errors": []}
    bad = api.post(
        "/api/v1/policies/validate/", {"code": 'tool "x" {\n  must deny }', "language": "sqrt"}, format="json"
    ).json()
    assert bad["valid"] is False
    assert [(e["line"], e["column"]) for e in bad["errors"]] == [(2, 13)]
    assert bad["errors"][0]["message"].startswith("unexpected '}'")
    cedar_ok = api.post(
        "/api/v1/policies/validate",
        {"language": "cedar", "code": "permit(principal, action, resource);"},
        format="json",
    ).json()
    assert cedar_ok["valid"] is True
    cedar_bad = api.post(
        "/api/v1/policies/validate", {"language": "cedar", "code": "permit(principal, action"}, format="json"
    ).json()
    assert cedar_bad["valid"] is False and cedar_bad["errors"][0]["line"] >= 1
    r = api.post("/api/v1/policies/validate", {"language": "rego", "code": ""}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "language"
    r = api.post("/api/v1/policies/validate", {}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "code"
    assert client_for().post("/api/v1/policies/validate", {"code": ""}, format="json").status_code == 401


def test_generate_like_the_dashboard_helper(api, upstream_settings, fake_upstream):
    services.do_set_provider_credential(
        provider="openrouter", api_key="sk-server", allowed_models=["gpt-5-mini"]
    )
    fake_upstream.push(fu.text('```sqrt\ntool "delete_file" {\n    must deny always;\n}\n```'))
    r = api.post(
        "/api/v1/policies/generate",
        {
            "description": "never delete files",
            "tools": [{"type": "function", "function": {"name": "delete_file"}}],
        },
        format="json",
    )
    assert r.status_code == 200, r.content
    assert 'tool "delete_file"' in r.json()["policy"]
    assert (
        fake_upstream.requests[-1].api_key == "sk-server" and "delete_file" in fake_upstream.requests[-1].text
    )
    assert not ApiKey.objects.exists()

    r = api.post("/api/v1/policies/generate", {"description": "x", "provider_key": "sk-u"}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "provider"
    r = api.post(
        "/api/v1/policies/generate", {"description": "x", "tools": [{"function": {}}]}, format="json"
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "tools"
    r = api.post("/api/v1/policies/generate", {"description": ""}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "description"
    fake_upstream.push(*[fu.text("no policy here {")] * 4)
    r = api.post(
        "/api/v1/policies/generate",
        {"description": "x", "provider": "openai", "model": "gpt-5-mini", "provider_key": "sk-u"},
        format="json",
    )
    assert r.status_code == 422 and "Failed to generate a valid policy" in r.json()["detail"]
    assert fake_upstream.requests[-1].api_key == "sk-u"


def test_generate_without_a_credential_is_400(api):
    r = api.post("/api/v1/policies/generate", {"description": "x"}, format="json")
    assert r.status_code == 400 and "credential" in r.json()["detail"]


def test_a_client_over_its_rate_gets_429_with_retry_after(own_throttles):
    user = UserFactory()
    with override_settings(REST_FRAMEWORK=rest_settings(api_user="3/minute")):
        c = client_for(user)
        codes = [c.get("/api/v1/keys/").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/api/v1/keys/")
        assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 60
        assert r.json()["code"] == "throttled" and r.json()["errors"] == []
        # Another user is not affected.
        assert client_for(UserFactory()).get("/api/v1/keys/").status_code == 200


def test_guessing_tokens_ends_in_429(own_throttles):
    with override_settings(REST_FRAMEWORK=rest_settings(api_anon="3/minute")):
        c = client_for(token="sqat-" + "x" * 43)
        c.defaults["REMOTE_ADDR"] = "127.0.0.77"
        codes = [c.get("/api/v1/keys/").status_code for _ in range(5)]
        assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]
        assert "Retry-After" in c.get("/api/v1/keys/").headers
        # The address's limit does not stop a client with a valid token.
        good = client_for(UserFactory())
        good.defaults["REMOTE_ADDR"] = "127.0.0.77"
        assert good.get("/api/v1/keys/").status_code == 200


def test_generation_has_its_own_rate(own_throttles, user):
    with override_settings(REST_FRAMEWORK=rest_settings(api_generate="1/hour")):
        c = client_for(user)
        assert c.post("/api/v1/policies/generate", {"description": "x"}, format="json").status_code == 400
        assert c.post("/api/v1/policies/generate", {"description": "x"}, format="json").status_code == 429
        assert c.post("/api/v1/policies/validate", {"code": ""}, format="json").status_code == 200


def test_schema_and_docs_are_served_without_a_cdn(client):
    r = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/v1/keys/",
        "/api/v1/keys/{id}/",
        "/api/v1/keys/{id}/revoke/",
        "/api/v1/keys/{id}/rotate/",
        "/api/v1/sessions/",
        "/api/v1/sessions/{id}/",
        "/api/v1/usage/",
        "/api/v1/policies/validate/",
        "/api/v1/policies/generate/",
    } <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["accessToken"]["scheme"] == "bearer"
    assert "429" in schema["paths"]["/api/v1/keys/"]["get"]["responses"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html and "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), html  # every asset from this server
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert client.get("/api/redoc/").status_code == 200


def test_token_page_mentions_the_docs(client, user):
    from tests.factories import PASSWORD

    client.login(username=user.username, password=PASSWORD)
    assert "/api/docs/" in client.get("/tokens/").content.decode()
    token_for(user)
