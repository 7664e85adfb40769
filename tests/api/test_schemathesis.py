"""schemathesis against the live schema: a bounded run over every operation (examples, coverage and fuzzing
phases, positive and negative data; SCHEMATHESIS_MAX_EXAMPLES per operation, 30 by default, about 750 requests
in ~30 s) must find no 5xx and no response whose status, content type, headers or body the schema does not
describe. (policies/generate mostly answers 400 here: no provider credential is configured, by design.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from apikeys import tokens
from sessions import services as log_services
from tests.conftest import _relay_env
from tests.factories import UserFactory, make_key
from tests.live import start_uvicorn
from tests.sessions.conftest import denied_session_events

pytestmark = pytest.mark.live

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "response_headers_conformance"
)
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30")


@pytest.fixture
def api_server(fake_upstream, transactional_db, artifacts_dir):
    env = {
        **_relay_env(fake_upstream),
        "API_THROTTLE_USER": "100000/minute",
        "API_THROTTLE_ANON": "100000/minute",
        "API_THROTTLE_GENERATE": "100000/minute",
    }
    live = start_uvicorn(env, log_dir=artifacts_dir)
    yield live
    live.stop()


CONFIG = """
[[operations]]
include-path = "/api/v1/keys/{{id}}/revoke/"
parameters = {{ "path.id" = "{revoked}" }}

[[operations]]
include-path-regex = '^/api/v1/keys/[{{]id[}}]/(rotate/)?$'
parameters = {{ "path.id" = "{key}" }}

[[operations]]
include-path = "/api/v1/sessions/{{id}}/"
parameters = {{ "path.id" = "{session}" }}
"""


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(api_server, artifacts_dir, tmp_path):
    user = UserFactory()
    key, _ = make_key(user, "dual-llm")
    to_revoke, _ = make_key(user, "single-llm")
    sid = uuid.uuid1()
    log_services.do_record_events(denied_session_events(key, sid))
    token = tokens.do_create_access_token(user=user, name="schemathesis")[1]
    # Real ids for the operations on one object (random ones would mostly meet 404s).
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.format(revoked=to_revoke.pk, key=key.pk, session=sid))
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    report = artifacts_dir / "schemathesis"
    cmd = [
        st,
        "--config-file",
        str(config),
        "run",
        f"{api_server.url}/api/schema/",
        "--checks",
        CHECKS,
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        "15",
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--no-color",
        "--header",
        f"Authorization: Bearer {token}",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(report),
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=540, cwd=tmp_path
    )  # its caches stay there
    log = out.stdout + out.stderr
    (artifacts_dir / "schemathesis.log").write_text(log)
    assert out.returncode == 0, log[-20000:]
    assert "Traceback" not in api_server.log(), api_server.log()[-20000:]
