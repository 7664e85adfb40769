"""pii_redaction: a corpus of personal data with the exact expected redaction (issue #7: at least 50)."""

import pytest

from tests.guardrails.helpers import PII_ONLY

E, P, C, IB, IP, ID, N = (
    "[REDACTED_EMAIL]",
    "[REDACTED_PHONE]",
    "[REDACTED_CREDIT_CARD]",
    "[REDACTED_IBAN]",
    "[REDACTED_IP]",
    "[REDACTED_ID]",
    "[REDACTED_NAME]",
)

CORPUS = [
    # --- e-mail addresses
    ("Contact me at jane.doe@example.com.", f"Contact me at {E}."),
    ("j_smith+newsletter@mail.example.co.uk", E),
    ("Emails: a@b.io, BOB@EXAMPLE.ORG", f"Emails: {E}, {E}"),
    ("<admin@corp-mail.example.net>", f"<{E}>"),
    ("reply-to: user123@sub.domain.example", f"reply-to: {E}"),
    # --- phone numbers, international
    ("+44 20 7946 0958", P),
    ("Call +1 (415) 555-2671 today", f"Call {P} today"),
    ("Berlin office: +49 30 901820", f"Berlin office: {P}"),
    ("+33 1 42 68 53 00", P),
    ("0044 20 7946 0958", P),
    ("Tokyo +81 3-1234-5678", f"Tokyo {P}"),
    ("mobile +91 98765 43210", f"mobile {P}"),
    ("+61 2 9374 4000", P),
    ("+1 650-253-0000", P),
    ("+34 912 345 678", P),
    ("+39 06 6988 3145", P),
    ("+12125551234", P),
    # --- phone numbers, national formats
    ("(415) 555-2671", P),
    ("tel. 415-555-2671", f"tel. {P}"),
    ("415.555.2671", P),
    ("London 020 7946 0958", f"London {P}"),
    # --- payment cards (issuer prefix + length + Luhn)
    ("Visa 4111 1111 1111 1111", f"Visa {C}"),
    ("4012888888881881", C),
    ("MC 5555-5555-5555-4444 exp 12/27", f"MC {C} exp 12/27"),
    ("2223003122003222", C),
    ("Amex 3782 822463 10005", f"Amex {C}"),
    ("371449635398431", C),
    ("Discover 6011 1111 1111 1117", f"Discover {C}"),
    ("JCB 3530111333300000", f"JCB {C}"),
    ("Diners 3056 9309 0259 04", f"Diners {C}"),
    # invalid Luhn: not redacted
    ("4111 1111 1111 1112", "4111 1111 1111 1112"),
    ("5555555555554445", "5555555555554445"),
    # --- IBANs (several countries; spaced and compact)
    ("DE89 3704 0044 0532 0130 00", IB),
    ("pay to GB82WEST12345698765432 by Friday", f"pay to {IB} by Friday"),
    ("FR14 2004 1010 0505 0001 3M02 606", IB),
    ("NL91ABNA0417164300", IB),
    ("ES91 2100 0418 4502 0005 1332", IB),
    ("IT60 X054 2811 1010 0000 0123 456", IB),
    ("CH93 0076 2011 6238 5295 7", IB),
    ("DE89 3704 0044 0532 0130 00 ABCD", f"{IB} ABCD"),
    # wrong check digits: not redacted
    ("DE89 3704 0044 0532 0130 01", "DE89 3704 0044 0532 0130 01"),
    # --- IP addresses
    ("client 192.168.1.10 connected", f"client {IP} connected"),
    ("DNS 8.8.8.8", f"DNS {IP}"),
    ("2001:db8::8a2e:370:7334", IP),
    ("from fe80::1ff:fe23:4567:890a.", f"from {IP}."),
    ("::ffff:192.0.2.128", IP),
    # loopback and invalid addresses: not redacted
    ("127.0.0.1", "127.0.0.1"),
    ("999.1.1.1", "999.1.1.1"),
    # --- national identifiers
    ("SSN 123-45-6789", f"SSN {ID}"),
    ("SSN: 123456789", f"SSN: {ID}"),
    ("000-12-3456", "000-12-3456"),  # invalid area number
    ("NI number AB 12 34 56 C", f"NI number {ID}"),
    ("JG103759A", ID),
    ("DNI 12345678Z", f"DNI {ID}"),
    ("NIE X1234567L", f"NIE {ID}"),
    ("codice fiscale RSSMRA85T10A562S", f"codice fiscale {ID}"),
    ("CPF 123.456.789-09", f"CPF {ID}"),
    ("Aadhaar 2345 6789 0124", f"Aadhaar {ID}"),
    ("NIR 2 95 10 99 126 111 93", f"NIR {ID}"),
    ("personnummer 811228-9874", f"personnummer {ID}"),
    # --- person names, where the context says so
    ("Mr. John Smith called.", f"Mr. {N} called."),
    ("Dr. Jane Doe", f"Dr. {N}"),
    ("Prof. Marie-Claire O'Neil", f"Prof. {N}"),
    ("Mr. J. R. R. Tolkien wrote", f"Mr. {N} wrote"),
    ("Dear Mr. Smith And the team", f"Dear Mr. {N} And the team"),
    ("Full name: Maria Garcia Lopez", f"Full name: {N}"),
    ("first_name=Pierre", f"first_name={N}"),
    ('{"patient name": "Ronald McDonald"}', f'{{"patient name": "{N}"}}'),
    ("Jane Doe <jane@x.org>", f"{N} <{E}>"),
    ("Best regards,\nAlice Walker", f"Best regards,\n{N}"),
    ("Thanks!\n--\nBob Marley\nCEO", f"Thanks!\n--\n{N}\nCEO"),
    # --- neighbours: a match must not swallow or hide the next one
    ("ip 192.0.2.1 (415) 555-2671", f"ip {IP} {P}"),
    ("card 4111 1111 1111 1111 1 left", f"card {C} 1 left"),
    ("+44 20 7946 0958 020 7946 0958", f"{P} {P}"),
    ("4111111111111111,5555555555554444", f"{C},{C}"),
    # --- several kinds in one string
    (
        "Refund 4111111111111111 to jane@example.com, phone +44 20 7946 0958",
        f"Refund {C} to {E}, phone {P}",
    ),
    (
        "Ms. Ada Lovelace (ada@analytical.engine.org, 192.0.2.44) IBAN GB82 WEST 1234 5698 7654 32",
        f"Ms. {N} ({E}, {IP}) IBAN {IB}",
    ),
]


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 50
    assert sum(1 for text, expected in CORPUS if text != expected) >= 50


@pytest.mark.parametrize(("text", "expected"), CORPUS, ids=[c[0][:40] for c in CORPUS])
def test_redaction(text: str, expected: str):
    out = PII_ONLY.scan_deterministic(text, where="tool_result")
    assert out.value == expected
    if text == expected:
        assert out.findings == ()
        assert out.tags == frozenset()
    else:
        assert out.tags == {"pii"}
        assert all(f.action == "redacted" and f.guardrail == "pii_redaction" for f in out.findings)
        assert sum(f.span_count for f in out.findings) == expected.count("[REDACTED_")


@pytest.mark.parametrize(("text", "expected"), CORPUS[:12], ids=[c[0][:40] for c in CORPUS[:12]])
def test_redaction_is_the_same_in_tool_arguments(text: str, expected: str):
    out = PII_ONLY.scan_deterministic({"body": text}, where="tool_args")
    assert out.value == {"body": expected}
    assert not out.blocked  # PII is redacted, never a reason to block


def test_every_placeholder_kind_is_covered():
    kinds = {p for _, expected in CORPUS for p in (E, P, C, IB, IP, ID, N) if p in expected}
    assert kinds == {E, P, C, IB, IP, ID, N}


def test_findings_name_kinds_and_never_contain_the_data():
    text = "Mr. John Smith, john.smith@example.com, +44 20 7946 0958, 4111 1111 1111 1111"
    out = PII_ONLY.scan_deterministic({"note": text}, where="tool_result")
    assert {f.kind for f in out.findings} == {"person_name", "email", "phone", "credit_card"}
    log = str(out.to_log())
    for secret in ("John", "Smith", "john.smith", "7946", "4111"):
        assert secret not in log
    email = next(f for f in out.findings if f.kind == "email")
    assert email.paths == ("$.note",)
    assert email.detail == "pii_redaction: redacted 1 e-mail address in tool result at $.note"
