"""Shared fixtures. Factories live in tests/factories.py; the fake upstream in tests/fake_upstream.py;
real uvicorn / Celery processes in tests/live.py."""

import os
from pathlib import Path

import pytest

from tests.factories import UserFactory, make_key

pytest_plugins = ["tests.fixtures_upstream", "tests.browser"]  # fake upstream fixtures; browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _relay_env(fake) -> dict:
    return {
        **fake.base_urls(),
        "RELAY_UPSTREAM_TIMEOUT": "3",
        "RELAY_KEY_CACHE_SECONDS": "0.2",
        "LOG_SPOOL_DIR": str(ARTIFACTS / f"spool-{os.getpid()}"),
    }


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, artifacts_dir):
    """A real Celery worker on the test database when a broker is configured (CI), else None (eager)."""
    import os

    if not os.environ.get("CELERY_BROKER_URL"):
        yield None
        return
    from tests.live import start_celery_worker

    with django_db_blocker.unblock():
        worker = start_celery_worker({}, log_dir=artifacts_dir)
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def relay_server(
    django_db_setup, django_db_blocker, fake_upstream_server, artifacts_dir, celery_worker_process
):
    """A uvicorn process serving the ASGI app against the test database and the fake upstream."""
    from tests.live import start_uvicorn

    with django_db_blocker.unblock():
        live = start_uvicorn(_relay_env(fake_upstream_server), log_dir=artifacts_dir)
    yield live
    live.stop()


@pytest.fixture
def relay(relay_server, fake_upstream, transactional_db):
    """The live relay's base URL, with a clean fake upstream and committed test data."""
    return relay_server.url


@pytest.fixture
def dual_key(transactional_db):
    user = UserFactory()
    key, secret = make_key(user, arch="dual-llm")
    return secret


@pytest.fixture
def single_key(transactional_db):
    user = UserFactory()
    key, secret = make_key(user, arch="single-llm")
    return secret


@pytest.fixture(autouse=True, scope="session")
def _retry_flush_on_deadlock():
    """``transactional_db`` empties the tables with TRUNCATE (PostgreSQL) after each test, while the live
    relay and the Celery worker may still be writing that test's log events; PostgreSQL then may pick the
    TRUNCATE as a deadlock victim. Retry it: the other transaction finishes and the flush goes through."""
    from django.core.management.commands import flush

    original = flush.Command.handle

    def handle(self, *args, **options):
        for attempt in range(6):
            try:
                return original(self, *args, **options)
            except Exception as exc:  # flush wraps the database error in a CommandError
                if "deadlock" not in str(exc.__cause__ or exc).lower() or attempt == 5:
                    raise
                import time

                time.sleep(0.2 * (attempt + 1))

    flush.Command.handle = handle
    yield
    flush.Command.handle = original


@pytest.fixture(autouse=True, scope="session")
def _close_pooled_connections(django_db_setup):
    """The relay's database threads (sequrity_site.aio) keep connections open; close them before the test
    database is dropped."""
    yield
    from sequrity_site.aio import close_connections

    close_connections()
