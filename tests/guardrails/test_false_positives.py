"""Ordinary text must come through untouched with every deterministic detector on."""

import json

import pytest

from tests.guardrails.helpers import DETERMINISTIC

ORDINARY = [
    # order numbers, references, codes
    "Order #12345678 shipped on 2024-10-12T08:15:00Z",
    "Order 4155552671 confirmed",
    "Order ORD-2024-100002 contains 3 items",
    "Invoice INV-2024-000123, SKU 4006381333931",
    "Reference 2024/000123/AB",
    "Lot 2024-10-12-001",
    "Tracking number 1Z999AA10123456784",
    "ISBN 978-3-16-148410-0",
    "Error code 0x80070005 at line 42",
    "CVE-2024-12345 fixed in 2.4.1",
    "UUID 123e4567-e89b-12d3-a456-426614174000",
    "SHA 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15dd6c15b0f00a0",
    "Build #20241012.3 deployed to production",
    "Phone extension 1234, PIN 0000",
    # dates, times, fractions, ratios
    "Meeting on 10/12/2024 at 10:30, room 4B",
    "Date 2024-10-12 10:30:00, dates 12.10.2024 and 01.02.2023",
    "Call the API at 10:00 UTC+01:00",
    "Time: 12:30:45, ratio 16:9",
    "ratio 1:2:3, MAC 00:1A:2B:3C:4D:5E",
    "Use 1/2 cup of sugar and/or honey, 24/7, w/o, he/she, read/write, I/O, km/h, TCP/IP",
    "Math: 3/4 + 5/8 = 11/8",
    "Score 9/10, rating 4.5/5",
    "Temperature 36.6 C, pressure 120/80",
    "Year range 1990-2024, population 8 000 000",
    # prices and amounts
    "Total: $1,234.56 (EUR 1.234,56)",
    "Price list: 19.99, 29.99, 39.99, 49.99",
    "Account balance 12 345 678.90",
    "Amount: 1500000 USD, 3,000,000 EUR",
    # versions and protocols
    "version 1.2.3, build 2024.10.12, python 3.11.7",
    "HTTP/1.1 200 OK",
    "ISO 8601, RFC 3339, UTF-8",
    "Coordinates 48.8566, 2.3522",
    "Page 12 of 345",
    "Route 66 and Interstate 95",
    # code snippets
    "def f(x): return x.get('name')  # logger.info(msg); self.app.run()",
    "for i in range(10): print(i / 2)",
    "std::vector<int> v; auto it = v.begin();",
    "Use Python's os.path.join and pathlib.Path",
    "const url = config.baseUrl + path; fetch(url)",
    '{"id": 42, "price": 9.99, "qty": 3, "name": "Widget"}',
    "The API returns application/json from /api/v1/users",
    "if (a && b) { return a / b; }",
    # prose, names that are not a person's, greetings
    "The quick brown fox jumps over the lazy dog.",
    "John walked to the store and bought milk.",
    "Apple Inc. reported revenue of $89.5 billion.",
    "Meeting with the Sales Team",
    "Thanks,\nThe Support Team",
    "Best,\nSupport",
    "Dear Sir or Madam,",
    "Status: Delivered",
    "Name: Widget",
    "Customer name: Acme Corp",
    "Phone: n/a",
    "see e.g. section 4.2 and i.e. the appendix",
    "Read the README.md and config.yaml, then run Node.js",
]


def test_there_are_many_ordinary_texts():
    assert len(ORDINARY) >= 50


@pytest.mark.parametrize("text", ORDINARY, ids=[t[:40] for t in ORDINARY])
def test_ordinary_text_is_untouched(text: str):
    for where in ("tool_result", "tool_args"):
        out = DETERMINISTIC.scan_deterministic({"text": text}, where=where)
        assert out.value == {"text": text}
        assert out.findings == ()
        assert not out.blocked


def test_a_whole_ordinary_document_is_returned_as_the_same_object():
    doc = {
        "results": [{"id": i, "text": t, "tags": ["a", "b"], "score": 0.5} for i, t in enumerate(ORDINARY)]
    }
    out = DETERMINISTIC.scan_deterministic(doc, where="tool_result")
    assert out.value is doc
    # the same text as one JSON string (tool results often arrive serialised)
    text = json.dumps(doc)
    assert DETERMINISTIC.scan_deterministic(text, where="tool_result").value == text
