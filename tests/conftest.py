"""Shared fixtures. Factories live in tests/factories.py; the fake upstream in tests/fake_upstream.py."""

import pytest

from tests.factories import UserFactory


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()
