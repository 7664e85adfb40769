"""Fixtures of the dashboard tests."""

import pytest

from tests.factories import PASSWORD


@pytest.fixture
def user_client(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client
