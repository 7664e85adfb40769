"""Fixtures of the management API tests: users with access tokens, and clients that send them."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from apikeys import tokens
from tests.factories import UserFactory

HIGH_RATES = {"api_user": "100000/minute", "api_anon": "100000/minute", "api_generate": "100000/minute"}


def rest_settings(**rates) -> dict:
    from django.conf import settings

    return {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**HIGH_RATES, **rates}}


@pytest.fixture(autouse=True)
def _generous_throttles(request):
    """The suite makes many requests from one address; the throttle tests set their own rates."""
    if "own_throttles" in request.fixturenames:
        yield
        return
    with override_settings(REST_FRAMEWORK=rest_settings()):
        yield


@pytest.fixture
def own_throttles():
    """Requested by the tests that set their own throttle rates."""


def token_for(user, **kwargs) -> str:
    return tokens.do_create_access_token(user=user, name="test token", **kwargs)[1]


def client_for(user=None, token: str | None = None) -> APIClient:
    client = APIClient()
    token = token or (token_for(user) if user is not None else None)
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def api(user):
    return client_for(user)


@pytest.fixture
def other_api(other_user):
    return client_for(other_user)


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def staff_api(staff_user):
    return client_for(staff_user)
