"""In Chromium (Playwright): the sessions list's search and its "Live" toggle (new sessions appear in place, no
reload), and charts of a single hour of traffic (one value) that still draw it."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM calls of the test run beside Playwright's loop

from sessions import services  # noqa: E402
from tests.dashboard.test_responsive import ARTIFACTS, signed_in, world  # noqa: E402, F401
from tests.sessions.conftest import session_row, step, usage  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# The first non-empty value of each dataset of a chart: how big its point is drawn, and the pixel under it.
LONE_POINTS = """(id) => {
  const canvas = document.getElementById(id), chart = canvas._chart, ratio = window.devicePixelRatio || 1;
  const pixels = canvas.getContext("2d");
  return chart.data.datasets.map((dataset, i) => {
    const index = dataset.data.findIndex((v) => v !== null && v !== undefined);
    const point = chart.getDatasetMeta(i).data[index];
    const [r, g, b, a] = pixels.getImageData(Math.round(point.x * ratio), Math.round(point.y * ratio), 1, 1).data;
    return {label: dataset.label, values: dataset.data.filter((v) => v !== null).length,
            radius: point.options.radius, rgba: [r, g, b, a]};
  });
}"""


def test_search_and_live_toggle(browser, live_server, world):  # noqa: F811
    page = signed_in(browser, live_server, world["dana"], 1280)
    page.goto("/dashboard/sessions/")
    page.fill("#id_q", "LISBON")
    page.press("#id_q", "Enter")
    page.wait_for_url("**q=LISBON**")
    assert page.locator("#sessions-table tbody tr").count() == 13
    assert "Compare the three cheapest flights to Lisbon" in page.inner_text(
        "#sessions-table tbody tr >> nth=0"
    )

    page.goto("/dashboard/sessions/")
    page.evaluate("window.stillTheSamePage = true")
    page.click("label.switch")
    page.wait_for_selector("#live[data-refreshed]", state="attached")
    assert page.is_checked("#live-toggle")
    sid = uuid.uuid1()
    now = datetime.now(UTC)
    services.do_record_events(
        [
            session_row(world["research"], sid, now, status="open", turns=1),
            step(
                world["research"],
                sid,
                1,
                "user_message",
                {"text": "A question asked while the list was live"},
                at=now,
            ),
            usage(world["research"], now, session_id=str(sid)),
        ]
    )
    row = page.wait_for_selector(f"#session-rows tr.is-new[data-session-id='{sid}']", timeout=15_000)
    assert "A question asked while the list was live" in row.inner_text()
    assert page.evaluate("window.stillTheSamePage") is True  # swapped in place, not reloaded
    assert page.locator("#status-tabs [data-status=''] .count").inner_text() == "15"
    assert "Updated" in page.inner_text("#live-status")
    page.screenshot(path=str(ARTIFACTS / "live-sessions.png"))

    page.reload()  # the choice is remembered
    page.wait_for_selector("#live.on")
    page.click("label.switch")
    assert not page.is_checked("#live-toggle") and page.inner_text("#live-status") == ""
    assert not page.js_errors, page.js_errors
    page.context.close()


@pytest.mark.parametrize("chart", ["chart-latency", "chart-errors"])
def test_a_chart_of_one_value_draws_it(browser, live_server, world, chart):  # noqa: F811
    page = signed_in(browser, live_server, world["dana"], 1280)
    page.goto("/dashboard/?range=24h")
    page.wait_for_selector(f"#{chart}[data-drawn='true']")
    for point in page.evaluate(LONE_POINTS, chart):
        assert point["values"] == 1 and point["radius"] > 0, point
        assert point["rgba"][3] > 0, f"nothing drawn at the {point['label']} point: {point}"
    page.locator(f"#{chart}").screenshot(path=str(ARTIFACTS / f"single-point-{chart}.png"))
    page.context.close()
