"""Pytest fixtures for the fake upstream. Use from a conftest:

    from tests.fixtures_upstream import fake_upstream, fake_upstream_server, upstream_settings  # noqa: F401

* ``fake_upstream_server`` (session): the running :class:`tests.fake_upstream.FakeUpstream` (one per process).
* ``fake_upstream`` (function): the same server, reset before and after the test (queue, recorded requests).
* ``upstream_settings`` (function): ``relay.providers.UpstreamSettings`` pointing at it, installed with
  ``relay.providers.configure`` for the test's duration (timeout 30 s; call ``fake.settings(timeout=…)`` for
  another one).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.fake_upstream import FakeUpstream, shared_fake_upstream  # noqa: E402


@pytest.fixture(scope="session")
def fake_upstream_server() -> FakeUpstream:
    return shared_fake_upstream()


@pytest.fixture
def fake_upstream(fake_upstream_server: FakeUpstream):
    fake_upstream_server.reset()
    yield fake_upstream_server
    fake_upstream_server.reset()


@pytest.fixture
def upstream_settings(fake_upstream: FakeUpstream):
    from relay.providers import configure, get_settings

    previous = get_settings()
    settings = fake_upstream.settings()
    configure(settings)
    yield settings
    configure(previous)
