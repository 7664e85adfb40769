"""url_blocker and file_blocker: masked in tool results, blocking in tool-call arguments."""

import pytest

from tests.guardrails.helpers import DETERMINISTIC, FILES_ONLY, URLS_ONLY

U, F = "[BLOCKED_URL]", "[BLOCKED_FILE]"

URL_CASES = [
    ("see https://example.com/a?b=1.", f"see {U}."),
    ("http://localhost:8080/admin", U),
    ("ftp://files.example.net/pub/x.tar.gz and more", f"{U} and more"),
    ("wss://stream.example.io/socket", U),
    ("visit www.example.org/path?q=1, then", f"visit {U}, then"),
    ("docs at docs.python.org/3/library.", f"docs at {U}."),
    ("example.com", U),
    ("mirror: downloads.example.co.uk:8443/file", f"mirror: {U}"),
    ("(https://en.wikipedia.org/wiki/Foo_(bar))", f"({U})"),
    ('<a href="https://evil.example/x">', f'<a href="{U}">'),
    ("two: https://a.example/x https://b.example/y", f"two: {U} {U}"),
    ("HTTPS://EXAMPLE.COM/UPPER", U),
]

NOT_URLS = [
    "mail jane@example.com",  # an e-mail domain is not a URL
    "logger.info('x'); self.app.run(); obj.info = 1",
    "Read README.md and config.yaml, run Node.js",
    "e.g. and i.e. and etc.",
    "version 1.2.3",
    "file:///etc/passwd",  # a file, not a URL (file_blocker's business)
    "/api/v1/users",
]

FILE_CASES = [
    ("cat /etc/passwd", f"cat {F}"),
    ("key at /home/alice/.ssh/id_rsa.", f"key at {F}."),
    ("/var/log/syslog", F),
    ("report in /data/report.csv", f"report in {F}"),
    ("/tmp", F),
    ("C:\\Windows\\System32\\drivers\\etc\\hosts", F),
    ("open C:/Users/bob/file.txt now", f"open {F} now"),
    ("C:\\Program Files (x86)\\App\\app.exe is installed", f"{F} is installed"),
    ("C:\\Users\\bob\\a.txt and ~/b.txt", f"{F} and {F}"),
    ("\\\\server\\share\\doc.docx", F),
    ("~/secrets.txt", F),
    ("~alice/notes", F),
    ("file:///etc/shadow", F),
    ("../../etc/passwd", F),
    ("run ./run.sh", f"run {F}"),
    ("..\\windows\\win.ini", F),
    ("edit src/main.py and docs/guide.md", f"edit {F} and {F}"),
]

NOT_FILES = [
    "10/12/2024",
    "1/2 cup, 3/4 done",
    "and/or, he/she, read/write, w/o, 24/7, km/h, TCP/IP, I/O",
    "Content-Type: application/json",
    "GET /api/v1/users",
    "https://example.com/etc/passwd",  # a URL path part
    "docs.python.org/3/library/os.html",
    "Windows: 10, ratio 3:/",
    "~50 people",
    "wait...",
]


@pytest.mark.parametrize(("text", "expected"), URL_CASES, ids=[c[0][:40] for c in URL_CASES])
def test_urls_are_masked_in_tool_results(text, expected):
    out = URLS_ONLY.scan_deterministic(text, where="tool_result")
    assert out.value == expected
    assert out.tags == {"url"}
    assert not out.blocked
    assert all(f.action == "masked" and f.kind == "url" for f in out.findings)


@pytest.mark.parametrize("text", NOT_URLS)
def test_not_urls(text):
    assert URLS_ONLY.scan_deterministic(text, where="tool_result").findings == ()


@pytest.mark.parametrize(("text", "expected"), FILE_CASES, ids=[c[0][:40] for c in FILE_CASES])
def test_file_paths_are_masked_in_tool_results(text, expected):
    out = FILES_ONLY.scan_deterministic(text, where="tool_result")
    assert out.value == expected
    assert out.tags == {"file"}
    assert all(f.action == "masked" and f.kind == "file_path" for f in out.findings)


@pytest.mark.parametrize("text", NOT_FILES)
def test_not_file_paths(text):
    assert FILES_ONLY.scan_deterministic(text, where="tool_result").findings == ()


def test_url_in_tool_arguments_blocks_the_call_and_names_the_argument():
    out = URLS_ONLY.scan_deterministic({"url": "https://evil.example/x", "q": "weather"}, where="tool_args")
    assert out.blocked
    assert out.block_reason == "url_blocker: argument 'url' contains a URL"
    assert out.value == {"url": U, "q": "weather"}
    assert out.tags == {"url"}
    (finding,) = out.findings
    assert (finding.guardrail, finding.kind, finding.action, finding.span_count) == (
        "url_blocker",
        "url",
        "blocked",
        1,
    )
    assert finding.paths == ("$.url",)


def test_nested_arguments_are_named_by_path():
    args = {"options": {"targets": ["a", "see http://x.io/p"]}, "other": "go to www.example.org"}
    out = URLS_ONLY.scan_deterministic(args, where="tool_args")
    assert out.blocked
    assert out.block_reason == "url_blocker: arguments 'options.targets[1]', 'other' contain URLs"


def test_a_bare_string_argument_list():
    out = URLS_ONLY.scan_deterministic("fetch https://example.com", where="tool_args")
    assert out.block_reason == "url_blocker: the tool call arguments contain a URL"


def test_argument_keys_that_hold_a_url_or_a_path_count_as_a_whole():
    out = URLS_ONLY.scan_deterministic(
        {"link": "intranet/page", "endpoint": "localhost:8080"}, where="tool_args"
    )
    assert out.blocked and out.value == {"link": U, "endpoint": U}
    out = FILES_ONLY.scan_deterministic({"filename": "notes.txt", "dir": "reports"}, where="tool_args")
    assert out.blocked and out.value == {"filename": F, "dir": F}
    assert out.block_reason == "file_blocker: arguments 'filename', 'dir' contain file paths"
    # empty values and results are not affected by key names
    assert not FILES_ONLY.scan_deterministic({"path": ""}, where="tool_args").blocked
    assert FILES_ONLY.scan_deterministic({"path": "notes.txt"}, where="tool_result").findings == ()


def test_file_path_in_arguments_blocks():
    out = FILES_ONLY.scan_deterministic({"cmd": "cat /etc/passwd", "n": 3}, where="tool_args")
    assert out.blocked
    assert out.block_reason == "file_blocker: argument 'cmd' contains a file path"
    assert out.value == {"cmd": f"cat {F}", "n": 3}


def test_harmless_arguments_pass():
    for g in (URLS_ONLY, FILES_ONLY, DETERMINISTIC):
        out = g.scan_deterministic(
            {"query": "weather in Paris on 10/12/2024", "units": "metric"}, where="tool_args"
        )
        assert not out.blocked and out.block_reason is None and out.findings == ()


def test_both_blockers_and_pii_together():
    args = {"to": "jane@example.com", "body": "see https://x.example/a and /etc/hosts"}
    out = DETERMINISTIC.scan_deterministic(args, where="tool_args")
    assert out.blocked
    assert out.block_reason == (
        "file_blocker: argument 'body' contains a file path; url_blocker: argument 'body' contains a URL"
    )
    assert out.value == {"to": "[REDACTED_EMAIL]", "body": f"see {U} and {F}"}
    assert out.tags == {"pii", "url", "file"}


def test_a_url_swallows_the_personal_data_in_it():
    text = "https://example.com/?email=jane@example.com&ip=192.0.2.1"
    assert DETERMINISTIC.scan_deterministic(text, where="tool_result").value == U
    # without the URL blocker the personal data inside it is still redacted
    from tests.guardrails.helpers import PII_ONLY

    out = PII_ONLY.scan_deterministic(text, where="tool_result")
    assert out.value == "https://example.com/?email=[REDACTED_EMAIL]&ip=[REDACTED_IP]"


def test_blocker_only_configuration_does_not_touch_pii():
    text = "jane@example.com +44 20 7946 0958"
    assert URLS_ONLY.scan_deterministic(text, where="tool_result").value == text
    assert FILES_ONLY.scan_deterministic(text, where="tool_result").value == text
