"""Deterministic detectors: personal data, URLs and file paths in one piece of text.

Candidates come from compiled regular expressions; validators keep only real hits: ``python-stdnum`` for
checksums (Luhn, IBAN mod 97, national ids), ``phonenumbers`` for phone numbers (libphonenumber's metadata:
country codes, lengths, number ranges), ``ipaddress`` for IP addresses. Every hit is a ``Span`` with a
confidence ``score`` so the ``pii_redaction`` threshold can select how aggressive redaction is (``SCORES``).

Speed. Python's regex engine is fast only when a pattern starts with a literal (it then jumps between
occurrences with a memchr-like search) or a narrow character class; a pattern that starts with a lookbehind,
an ``(?i)`` alternation or ``[A-Za-z0-9]`` is tried at every position of the text (~15 ns per character and
pattern). So every detector here is *anchored*: e-mail addresses on ``@``, URLs on ``://``, ``www.`` and
``.com``-like suffixes, paths on ``/``, ``\\``, ``~``, ``:\\``, IPv6 on ``:``, name fields on ``:``/``=``,
signatures on a newline; lookbehinds come after the first character. All digit-based detectors (cards,
phones, IPv4, national ids) share one pass that finds runs of digits and separators ("numeric clusters");
only clusters with enough digits are handed to the specific patterns, on a small window.

The scanner (``scan.py``) runs the detectors over all strings of a JSON value at once, joined with NUL
characters, so no pattern may match ``\\x00`` (negated character classes list it explicitly) and a span
crossing a NUL is discarded.

One module, over 700 lines, because the detectors are tuned as a set: the anchoring above, one numeric-cluster
pass for every digit-based kind, and the NUL rule hold for all of them, and a change to one pattern is
checked against the others' (tests/guardrails/test_false_positives.py).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import NamedTuple

import phonenumbers
from stdnum import iban as _iban
from stdnum import luhn as _luhn
from stdnum.br import cpf as _br_cpf
from stdnum.es import dni as _es_dni
from stdnum.es import nie as _es_nie
from stdnum.fr import nir as _fr_nir
from stdnum.in_ import aadhaar as _in_aadhaar
from stdnum.it import codicefiscale as _it_cf
from stdnum.se import personnummer as _se_pnr
from stdnum.us import ssn as _us_ssn

from .types import FILE_BLOCKER, PII, URL_BLOCKER


class Span(NamedTuple):
    start: int
    end: int
    kind: str
    guardrail: str
    score: float


# kind -> placeholder that replaces the span
PLACEHOLDERS: dict[str, str] = {
    "email": "[REDACTED_EMAIL]",
    "phone": "[REDACTED_PHONE]",
    "credit_card": "[REDACTED_CREDIT_CARD]",
    "iban": "[REDACTED_IBAN]",
    "ip": "[REDACTED_IP]",
    "national_id": "[REDACTED_ID]",
    "person_name": "[REDACTED_NAME]",
    "url": "[BLOCKED_URL]",
    "file_path": "[BLOCKED_FILE]",
}

# Overlap resolution: the lower rank wins, then the longer span (a URL swallows the e-mail address in its
# query string, an IBAN or a card number wins over the phone number its digits might also form).
PRIORITY: dict[str, int] = {
    "url": 0,
    "file_path": 1,
    "email": 2,
    "iban": 3,
    "credit_card": 4,
    "national_id": 5,
    "ip": 6,
    "phone": 7,
    "person_name": 8,
}

# Confidence of each PII detector. ``pii_redaction`` redacts the hits whose score is >= its effective
# threshold: 0.5 (default) takes everything, "low sensitivity" (0.8) only checksummed or unambiguous ones.
SCORES: dict[str, float] = {
    "email": 0.95,
    "credit_card": 0.95,  # Luhn + issuer prefix + length
    "iban": 0.99,  # country length + mod 97
    "national_id": 0.85,  # formatted + checksum/structure validated
    "ip": 0.8,
    "phone_intl": 0.85,  # explicit country code, valid number range
    "phone_national": 0.6,  # national format, valid for one of the default regions
    "person_name": 0.6,  # honorific, "name:" field, "Name <email>", person-name JSON key
    "signature_name": 0.5,  # the line after a closing formula ("Best regards,")
}

_NON_DIGIT = re.compile(r"\D")

# ---------------------------------------------------------------------------------------------------------
# e-mail: anchored on "@"; the local part is read backwards, the domain forwards

_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_LOCAL_EDGE = "._%+-"
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")
_AT = re.compile("@")


def _emails(text: str, out: list[Span]) -> None:
    score = SCORES["email"]
    for m in _AT.finditer(text):
        at = m.start()
        i = at
        while i > 0 and at - i < 64 and text[i - 1] in _LOCAL_CHARS:
            i -= 1
        while i < at and text[i] in _LOCAL_EDGE:
            i += 1
        if i == at or (i > 0 and text[i - 1].isalnum()):
            continue
        d = _EMAIL_DOMAIN.match(text, at + 1)
        if d:
            out.append(Span(i, d.end(), "email", PII, score))


# ---------------------------------------------------------------------------------------------------------
# numeric clusters: a run of digits joined by short separators ("+44 20 7946 0958", "4111-1111-...",
# "192.168.1.10", "(415) 555-2671"). Each digit-based pattern below runs only on clusters with enough digits.

_NUM = re.compile(r"[\d+(][\d .\-()+]*")
_NUM_TRAILING = " .-()+"

# payment cards: 13-19 digits, plain or in the printed groupings (4-4-4-4[-3], 4-6-5, 4-6-4, 4-4-4-2...) with
# spaces or dashes; Luhn-valid, known issuer prefix
_CARD = re.compile(
    r"\d(?<![\w.+\-]\d)(?:\d{12,18}|\d{3}(?:[ \-]\d{4,6}){2,3}(?:[ \-]\d{1,4})?)(?![\w.\-]?\d)"
)


def card_brand_ok(digits: str) -> bool:
    """Known issuer identification number for the length (Visa, Mastercard, Amex, Discover, Diners, JCB,
    UnionPay, Maestro)."""
    n = len(digits)
    p2 = int(digits[:2])
    p3 = int(digits[:3])
    p4 = int(digits[:4])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # American Express
        return n == 15
    if p4 == 6011 or p2 == 65 or 644 <= p3 <= 649 or 622126 <= int(digits[:6]) <= 622925:  # Discover
        return 16 <= n <= 19
    if 300 <= p3 <= 305 or p2 in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if 3528 <= p4 <= 3589:  # JCB
        return 16 <= n <= 19
    if p2 == 62:  # UnionPay
        return 16 <= n <= 19
    if p2 == 50 or 56 <= p2 <= 69:  # Maestro
        return 13 <= n <= 19
    return False


def is_card_number(digits: str) -> bool:
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    return card_brand_ok(digits) and _luhn.is_valid(digits)


def _card_end(candidate: str) -> int:
    """Length of the longest prefix of ``candidate`` that is a card number ending at a group boundary (the
    candidate can run into a following number: "4111 1111 1111 1111 1")."""
    digits = _NON_DIGIT.sub("", candidate)
    if is_card_number(digits):
        return len(candidate)
    count = 0
    cuts: list[tuple[int, int]] = []  # (position of a separator, digits before it)
    for i, ch in enumerate(candidate):
        if ch in " -":
            cuts.append((i, count))
        else:
            count += 1
    for i, n in reversed(cuts):
        if n < 13:
            break
        if is_card_number(digits[:n]):
            return i
    return 0


# IPv4 (loopback and unspecified addresses identify no one and are left alone)
_IPV4 = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d)")


def _ip_ok(text: str) -> bool:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_unspecified)


# Phone numbers. International: "+" or "00" then a country code (validated without a default region).
# National: the formatted shapes only (a bare run of digits is an order number far more often than a phone
# number): NANP "(415) 555-2671" / "415-555-2671" / "415.555.2671", and trunk-0 numbers "020 7946 0958",
# "030 12345678", "01 42 68 53 00" with one consistent separator, valid in one of PHONE_REGIONS_TRUNK.
_PHONE_INTL = re.compile(r"(?:\+(?<![\w+]\+)|00(?<![\w+]00))[1-9](?:[ .\-]?\(?\d\)?){6,16}(?![\w]|[.\-]\d)")
_PHONE_NANP = re.compile(
    r"(?P<cc>1[ .\-])?(?:\([2-9]\d{2}\)[ ]?|[2-9]\d{2}([ .\-]))[2-9]\d{2}[ .\-]\d{4}(?![\w]|[.\-/]\d)"
)
_PHONE_TRUNK = re.compile(
    r"(?:\(0\d{1,4}\)[ ]?\d{2,8}(?:[ .\-]\d{2,6}){0,3}|0\d{1,4}([ .\-])\d{2,8}(?:\1\d{2,6}){0,3})(?![\w]|[.\-/]\d)"
)
_PHONE_BAD_BEFORE = re.compile(r"[\w+.\-/]")
PHONE_REGIONS_TRUNK: tuple[str, ...] = ("GB", "DE", "FR")


def _valid_phone(text: str, region: str | None) -> bool:
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(num)


def _intl_phone_end(candidate: str) -> int:
    """Length of the longest valid international number at the start of ``candidate`` (0 if none); trailing
    digit groups are dropped one by one (a candidate can run into a following number)."""
    text = "+" + candidate[2:] if candidate.startswith("00") else candidate
    offset = len(candidate) - len(text)
    for _ in range(4):
        if len(_NON_DIGIT.sub("", text)) < 7:
            return 0
        if _valid_phone(text, None):
            return len(text) + offset
        cut = max(text.rfind(" "), text.rfind("-"), text.rfind("."))
        if cut <= 1:
            return 0
        text = text[:cut]
    return 0


def _trunk_phone_end(candidate: str) -> int:
    """Like ``_intl_phone_end`` for a national number with a trunk 0, valid in one of PHONE_REGIONS_TRUNK."""
    text = candidate
    for _ in range(3):
        n = len(_NON_DIGIT.sub("", text))
        if n < 9:
            return 0
        if n <= 14 and any(_valid_phone(text, region) for region in PHONE_REGIONS_TRUNK):
            return len(text)
        cut = max(text.rfind(" "), text.rfind("-"), text.rfind("."))
        if cut <= 1:
            return 0
        text = text[:cut]
    return 0


# National identifiers in digit form: (pattern, validator, cheap precondition on the cluster). A cluster is
# a run of digits and separators; ``n`` its digit count, ``seps`` its separator count, ``letter`` whether an
# upper-case letter follows it.
_DigitCheck = Callable[[str, int, int, bool], bool]
_DIGIT_IDS: tuple[tuple[re.Pattern[str], Callable[[str], bool], _DigitCheck], ...] = (
    # US Social Security number, dashed or spaced with one separator
    (
        re.compile(r"\d(?<![\w\-]\d)\d{2}([- ])\d{2}\1\d{4}(?![\w]|-\d)"),
        _us_ssn.is_valid,
        lambda c, n, seps, letter: n >= 9 and seps >= 2,
    ),
    # Spanish DNI (check letter)
    (re.compile(r"\d(?<![\w\-]\d)\d{7}-?[A-Z](?!\w)"), _es_dni.is_valid, lambda c, n, seps, letter: letter),
    # Brazilian CPF, formatted (two check digits)
    (
        re.compile(r"\d(?<![\w.]\d)\d{2}\.\d{3}\.\d{3}-\d{2}(?!\w|[.\-]\d)"),
        _br_cpf.is_valid,
        lambda c, n, seps, letter: n >= 11 and seps >= 3,
    ),
    # Indian Aadhaar, grouped 4-4-4 (Verhoeff check digit)
    (
        re.compile(r"[2-9](?<![\w\-][2-9])(?<!\d[ \-][2-9])\d{3}([ \-])\d{4}\1\d{4}(?![\w]|[ \-]\d)"),
        _in_aadhaar.is_valid,
        lambda c, n, seps, letter: n >= 12 and seps >= 2,
    ),
    # French NIR / social security number (mod 97 key)
    (
        re.compile(
            r"[12](?<![\w\-][12])(?<!\d [12]) ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?![\w]| \d)"
        ),
        _fr_nir.is_valid,
        lambda c, n, seps, letter: n >= 13,
    ),
    # Swedish personnummer (date + Luhn)
    (
        re.compile(r"\d(?<![\w\-]\d)(?:\d{5}|\d{7})[-+]\d{4}(?![\w]|-\d)"),
        _se_pnr.is_valid,
        lambda c, n, seps, letter: n >= 10 and ("-" in c or "+" in c),
    ),
)
_INTL_STARTS = ("+", "00", "(+", "(00")


def _digits_in_window(text: str, start: int, stop: int, out: list[Span]) -> None:  # noqa: C901 - one branch per digit-based kind
    """Run the digit-based detectors on the numeric cluster ``text[start:stop]``."""
    cluster = text[start:stop]
    n = len(_NON_DIGIT.sub("", cluster))
    if n < 4:
        return
    seps = len(cluster) - n
    end = min(len(text), stop + 4)  # the window: room for a check letter ("12345678-Z") and lookaheads
    if n >= 13:
        pos = start
        while (m := _CARD.search(text, pos, end)) is not None:
            e = _card_end(m.group())
            if e:
                out.append(Span(m.start(), m.start() + e, "credit_card", PII, SCORES["credit_card"]))
                pos = m.start() + e
            else:
                pos = m.start() + 1
    if seps >= 3 and cluster.count(".") >= 3:
        for m in _IPV4.finditer(text, start, end):
            if _ip_ok(m.group()):
                out.append(Span(m.start(), m.end(), "ip", PII, SCORES["ip"]))
    if n >= 7 and (
        "+" in cluster or cluster.startswith(_INTL_STARTS) or " 00" in cluster or "(00" in cluster
    ):
        for m in _PHONE_INTL.finditer(text, start, end):
            e = _intl_phone_end(m.group())
            if e:
                out.append(Span(m.start(), m.start() + e, "phone", PII, SCORES["phone_intl"]))
    if n >= 10 and seps >= 2:
        for m in _PHONE_NANP.finditer(text, start, end):
            s0 = m.start()
            if s0 > 0 and _PHONE_BAD_BEFORE.match(text, s0 - 1):
                if not m.group("cc"):
                    continue
                s0 = m.end("cc")  # the "1" ends the previous token ("192.0.2.1 (415) 555-2671")
            if _valid_phone(text[s0 : m.end()], "US"):
                out.append(Span(s0, m.end(), "phone", PII, SCORES["phone_national"]))
                if s0 == m.start() and m.group(
                    "cc"
                ):  # also without the "1 ", in case that overlaps a neighbour
                    out.append(Span(m.end("cc"), m.end(), "phone", PII, SCORES["phone_national"]))
    if n >= 9 and seps >= 1 and (cluster[0] == "0" or "(0" in cluster or " 0" in cluster):
        pos = start
        while (m := _PHONE_TRUNK.search(text, pos, end)) is not None:
            pos = m.start() + 1
            if m.start() > 0 and _PHONE_BAD_BEFORE.match(text, m.start() - 1):
                continue
            e = _trunk_phone_end(m.group())
            if e:
                out.append(Span(m.start(), m.start() + e, "phone", PII, SCORES["phone_national"]))
                pos = m.start() + e
    after = text[stop : stop + 2]
    letter = n >= 8 and bool(after) and (after[0].isupper() or (after[0] == "-" and after[1:2].isupper()))
    for pattern, validate, precondition in _DIGIT_IDS:
        if precondition(cluster, n, seps, letter):
            for m in pattern.finditer(text, start, end):
                if validate(m.group()):
                    out.append(Span(m.start(), m.end(), "national_id", PII, SCORES["national_id"]))


# ---------------------------------------------------------------------------------------------------------
# identifiers that start with capital letters: IBAN (country code, check digits, 11-30 alphanumerics,
# optionally grouped; stdnum checks country length and mod 97), Italian codice fiscale, Spanish NIE, UK
# National Insurance number (prefix rules from HMRC's published format). One pass, first letter consumed
# before the lookbehind so the engine can skip to capital letters.

_ALPHA_IDS = re.compile(
    r"[A-Z](?<![\w\-][A-Z])(?:"
    r"(?P<iban>[A-Z]\d{2}(?:[ \-]?[A-Z0-9]){10,30})"
    r"|(?P<cf>[A-Z]{5}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z](?!\w))"
    r"|(?P<nie>-?\d{7}-?[A-Z](?!\w))"
    r"|(?P<nino>[A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?!\w))"
    r")"
)
_ALNUM = re.compile(r"[A-Z0-9]")
_NINO_FIRST = frozenset("ABCEGHJKLMNOPRSTWXYZ")
_NINO_BAD_PREFIX = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


_IBAN_LETTERS = {ord(ch): str(ord(ch) - 55) for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def _mod97_ok(compact: str) -> bool:
    """The ISO 7064 mod 97-10 check alone (cheap; ``stdnum.iban`` then checks the country structure)."""
    return int((compact[4:] + compact[:4]).translate(_IBAN_LETTERS)) % 97 == 1


def _iban_end(candidate: str) -> int:
    """Length of the longest prefix of ``candidate`` that is a valid IBAN ending at a group boundary."""
    positions = [m.start() for m in _ALNUM.finditer(candidate)]
    for k in range(len(positions), 14, -1):
        end = positions[k - 1] + 1
        if end < len(candidate) and candidate[end] not in " -":
            continue
        compact = "".join(candidate[i] for i in positions[:k])
        if _mod97_ok(compact) and _iban.is_valid(compact):
            return end
    return 0


def _alpha_ids(text: str, out: list[Span], skip: list[tuple[int, int]] | None = None) -> None:
    pos = 0
    while (m := _ALPHA_IDS.search(text, pos)) is not None:
        start = m.start()
        pos = start + 1
        kind = m.lastgroup
        if kind == "iban":
            e = _iban_end(m.group())
            if e:
                out.append(Span(start, start + e, "iban", PII, SCORES["iban"]))
                pos = start + e
            elif skip is not None:
                skip.append((start, m.end()))  # IBAN-shaped: its digits are not phone or card numbers
        elif kind == "cf":
            if _it_cf.is_valid(m.group()):
                out.append(Span(start, m.end(), "national_id", PII, SCORES["national_id"]))
                pos = m.end()
        elif kind == "nie":
            if text[start] in "XYZ" and _es_nie.is_valid(m.group()):
                out.append(Span(start, m.end(), "national_id", PII, SCORES["national_id"]))
                pos = m.end()
        elif kind == "nino":  # noqa: SIM102 - dispatch on the kind first: merged, a miss would try the next kind
            if text[start] in _NINO_FIRST and text[start : start + 2] not in _NINO_BAD_PREFIX:
                out.append(Span(start, m.end(), "national_id", PII, SCORES["national_id"]))
                pos = m.end()


_SSN_KEYWORD = re.compile(
    r"(?:SSN|ssn|Ssn|[Ss]ocial [Ss]ecurity (?:[Nn]umber|[Nn]o\.?|#))[ \t]*[:#=]?[ \t]*(\d{9})(?!\w)"
)

# ---------------------------------------------------------------------------------------------------------
# IPv6: anchored on ":" followed by hex and ":"; the candidate is extended both ways and parsed.

_IPV6_ANCHOR = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:")
_IPV6_TAIL = frozenset("0123456789abcdefABCDEF:.")


def _ipv6(text: str, out: list[Span]) -> None:
    pos = 0
    n = len(text)
    while (m := _IPV6_ANCHOR.search(text, pos)) is not None:
        s = m.start()
        while s > 0 and text[s - 1] in _IPV6_CHARS:
            s -= 1
        e = m.end()
        while e < n and text[e] in _IPV6_TAIL:
            e += 1
        pos = e if e > m.end() else m.end()
        while e > s and text[e - 1] == ".":
            e -= 1
        if (s > 0 and (text[s - 1].isalnum() or text[s - 1] in "_.")) or (
            e < n and (text[e].isalnum() or text[e] == "_")
        ):
            continue
        cand = text[s:e]
        if cand.count(":") >= 2 and ("::" in cand or cand.count(":") == 7 or "." in cand) and _ip_ok(cand):
            out.append(Span(s, e, "ip", PII, SCORES["ip"]))


# ---------------------------------------------------------------------------------------------------------
# person names, where detectable without an NLP model: after an honorific, in a "name:" field, before an
# e-mail address in angle brackets, on the line after a closing formula. Ordinary capitalised words are not
# names by themselves, so nothing else is attempted.

# one capitalised name word: Smith, O'Neil, McDonald, Jean-Luc
_W = r"(?:[A-Z]['\u2019])?[A-Z][a-z]+(?:[A-Z][a-z]+)?(?:[-'\u2019][A-Z]?[a-z]+)?"
_NAME = rf"(?:[A-Z]\.[ ]?){{0,3}}{_W}(?:[ ](?:[A-Z]\.|{_W})){{0,3}}"
# a capitalised word that ends a name ("Mr. Smith And ...": the name is "Smith")
_FUNCTION_WORDS = frozenset(
    [
        "The",
        "A",
        "An",
        "And",
        "Or",
        "Of",
        "In",
        "On",
        "At",
        "To",
        "For",
        "From",
        "With",
        "By",
        "Is",
        "Was",
        "Has",
        "Will",
        "Who",
    ]
)
# a capitalised word that shows the text is not a person's name at all ("Name: Acme Corp", "Thanks, The Team")
_NOT_NAME_WORDS = frozenset(
    [
        "Team",
        "Support",
        "Staff",
        "Admin",
        "Customer",
        "Customers",
        "Service",
        "Services",
        "Sales",
        "Management",
        "Everyone",
        "All",
        "Department",
        "Office",
        "Company",
        "Inc",
        "Ltd",
        "Llc",
        "Corp",
        "Gmbh",
        "Group",
        "Bank",
        "Dear",
        "Hello",
        "Hi",
        "Thanks",
        "Thank",
        "Regards",
        "Best",
        "Sir",
        "Madam",
        "Yes",
        "No",
        "None",
        "Null",
        "Unknown",
        "Name",
        "Anonymous",
    ]
)
_HONORIFIC = re.compile(rf"(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Mme|Mlle|Herr|Frau)\b\.?[ ](?P<n>{_NAME})")
# "name:" fields: anchored on ":"/"=", the label before it is checked afterwards
_AFTER_COLON = re.compile(rf"[:=][ \t]*[\"']?(?P<n>{_NAME})")
_LABEL_BEFORE = re.compile(
    r"(?i:\b(?P<l>full[ _]?name|first[ _]?name|last[ _]?name|given[ _]?name|family[ _]?name|middle[ _]?name|"
    r"surname|patient[ _]name|customer[ _]name|contact[ _]name|employee[ _]name|cardholder(?:[ _]name)?|"
    r"account[ _]holder|holder[ _]name|name))[\"']?[ \t]*\Z"
)
# "Jane Doe <jane@example.org>": anchored on "<"
_ANGLE_EMAIL = re.compile(r"<[^>\s@\x00]+@")
_NAME_BEFORE = re.compile(rf"(?<![\w.])(?P<n>{_W}(?:[ ](?:[A-Z]\.|{_W})){{1,3}})[ ]*\Z")
# signatures: anchored on the newline that ends the closing formula
_SIGNATURE = re.compile(
    rf"\n(?:[ \t]*--[ \t]*\r?\n)?[ \t]*(?P<n>{_W}(?:[ ](?:[A-Z]\.|{_W})){{0,3}})[ \t]*(?=[\r\n\x00]|\Z)"
)
_CLOSING = re.compile(
    r"[ \t]*(?:Best regards|Kind regards|Warm regards|Warmest regards|Regards|Best wishes|Sincerely|"
    r"Yours sincerely|Yours truly|Yours faithfully|Cheers|Thanks|Thank you|Many thanks|Best)[ \t]*[,!.]?[ \t]*\r?"
)
# JSON keys whose string value is a person's name (normalised: lower case, no "_", "-", " ")
PERSON_NAME_KEYS = frozenset(
    [
        "fullname",
        "firstname",
        "lastname",
        "surname",
        "givenname",
        "familyname",
        "middlename",
        "customername",
        "patientname",
        "contactname",
        "cardholder",
        "cardholdername",
        "holdername",
        "accountholder",
        "personname",
        "authorname",
        "sendername",
        "recipientname",
        "employeename",
    ]
)
# A plain "name" key counts as a person's name when a sibling key is one of these
PERSON_SIBLING_KEYS = frozenset(
    [
        "email",
        "emailaddress",
        "phone",
        "phonenumber",
        "mobile",
        "telephone",
        "address",
        "dob",
        "dateofbirth",
        "birthdate",
        "ssn",
    ]
)
_WHOLE_NAME = re.compile(rf"\s*{_NAME}\s*")


def _name_len(name: str) -> int:
    """How much of a matched name is a person's name: cut before a function word, 0 if any word shows it is
    not one (an organisation, a greeting) or nothing is left."""
    pos = 0
    end = 0
    for word in name.split(" "):
        bare = word.rstrip(".")
        if bare in _FUNCTION_WORDS:
            break
        if bare in _NOT_NAME_WORDS:
            return 0
        pos += len(word) + 1
        if len(bare) > 1:
            end = pos - 1
    return end


def _name_ok(name: str) -> bool:
    return _name_len(name) == len(name)


def looks_like_name(value: str) -> bool:
    """A short string made only of capitalised name words (for values under person-name JSON keys)."""
    return len(value) <= 80 and _WHOLE_NAME.fullmatch(value) is not None and _name_ok(value.strip())


def _names(text: str, out: list[Span]) -> None:
    score = SCORES["person_name"]
    for m in _HONORIFIC.finditer(text):
        if m.start() > 0 and (text[m.start() - 1].isalnum() or text[m.start() - 1] == "_"):
            continue
        k = _name_len(m.group("n"))
        if k:
            out.append(Span(m.start("n"), m.start("n") + k, "person_name", PII, score))
    for m in _AFTER_COLON.finditer(text):
        name = m.group("n")
        label = _LABEL_BEFORE.search(text, max(0, m.start() - 24), m.start())
        if label is None or not _name_ok(name):
            continue
        # a bare "name:" label also names products and files: ask for at least two words there
        if label.group("l").lower() == "name" and " " not in name:
            continue
        out.append(Span(m.start("n"), m.end("n"), "person_name", PII, score))
    if "<" in text:
        for m in _ANGLE_EMAIL.finditer(text):
            before = _NAME_BEFORE.search(text, max(0, m.start() - 80), m.start())
            if before and _name_ok(before.group("n")):
                out.append(Span(before.start("n"), before.end("n"), "person_name", PII, score))
    if "\n" in text:
        for m in _SIGNATURE.finditer(text):
            line_start = max(text.rfind("\n", 0, m.start()), text.rfind("\x00", 0, m.start())) + 1
            if _CLOSING.fullmatch(text, line_start, m.start()) and _name_ok(m.group("n")):
                out.append(Span(m.start("n"), m.end("n"), "person_name", PII, SCORES["signature_name"]))


# ---------------------------------------------------------------------------------------------------------
# URLs: any scheme:// (except file:, which is a file path), www., and bare domains under common TLDs (not
# file-extension-like ones), not preceded by "@" (e-mail domain), "/" or "\\" (path part), nor followed by
# "(" or ".word" (code: logger.info(...)).

_SCHEME_SEP = re.compile("://")
_SCHEME_BEFORE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,15}\Z")
_URL_BODY = re.compile(r"[^\s\"'<>`\x00]+")
_URL_WWW = re.compile(
    r"(?:www|WWW)\.(?<![\w.@/\\\-]...\.)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+(?::\d{1,5})?(?:[/?#][^\s\"'<>`\x00]*)?"
)
_BARE_TLDS = (
    "com|org|net|edu|gov|mil|int|io|dev|ai|co|eu|uk|de|fr|nl|ch|at|be|se|no|dk|fi|jp|cn|ru|br|au|ca|"
    "biz|xyz|tech|cloud|online|site|news|shop|store|blog"
)
_DOT_TLD = re.compile(r"\.(?:" + _BARE_TLDS + r")(?![\w\-(]|\.\w)")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+")
_URL_TAIL = re.compile(r"(?::\d{1,5})?(?:[/?#][^\s\"'<>`\x00]*)?")
_URL_TRAILING = ".,;:!?'\")]}>"


def _trim_url(text: str, start: int, end: int) -> int:
    """Drop trailing sentence punctuation from a URL match, keeping balanced closing brackets."""
    while end > start and text[end - 1] in _URL_TRAILING:
        ch = text[end - 1]
        if ch == ")" and text.count("(", start, end) >= text.count(")", start, end):
            break
        end -= 1
    return end


def _urls(text: str, out: list[Span]) -> None:
    last = 0
    for m in _SCHEME_SEP.finditer(text):
        p = m.start()
        if p < last:
            continue  # inside the previous URL ("https://x/?next=https://y")
        s = _SCHEME_BEFORE.search(text, max(0, p - 16), p)
        if s is None or (s.start() > 0 and (text[s.start() - 1].isalnum() or text[s.start() - 1] == "_")):
            continue
        if s.group().lower() == "file":
            continue
        body = _URL_BODY.match(text, p + 3)
        if body is None:
            continue
        last = body.end()
        out.append(Span(s.start(), _trim_url(text, s.start(), last), "url", URL_BLOCKER, 1.0))
    if "www." in text or "WWW." in text:
        for m in _URL_WWW.finditer(text):
            out.append(Span(m.start(), _trim_url(text, m.start(), m.end()), "url", URL_BLOCKER, 1.0))
    for m in _DOT_TLD.finditer(text):
        p = m.start()
        i = p
        while i > 0 and text[i - 1] in _HOST_CHARS:
            i -= 1
        while i < p and text[i] in ".-":
            i += 1
        if i == p or (i > 0 and (text[i - 1] in "@/\\:_" or text[i - 1].isalnum())):
            continue
        if _HOST.fullmatch(text, i, p + 1) is None:
            continue
        tail = _URL_TAIL.match(text, m.end())
        assert tail is not None  # the tail pattern matches the empty string
        out.append(Span(i, _trim_url(text, i, tail.end()), "url", URL_BLOCKER, 0.9))


# ---------------------------------------------------------------------------------------------------------
# file paths: file:// URLs, Windows drive and UNC paths, home (~/...), explicit relative (./x, ../x), Unix
# absolute paths under a well-known root or ending in a file extension, and relative paths with at least one
# directory and a file extension (src/main.py). Dates (10/12/2024), fractions (1/2), "and/or", MIME types
# and URL path parts are not paths.

_FILE_URL = re.compile(r"(?:file|FILE|File):/[^\s\"'<>`\x00]*")
_WIN_SEG = r"[^\s\"'<>|*?\\/:\x00]+"
_WIN_ANCHOR = re.compile(r":[\\/]")
# a directory name may contain spaces ("Program Files (x86)") when its words are plain words followed by a
# separator; a file name may not (the text after "C:\\a.txt and ..." is prose)
_WIN_PATH = re.compile(
    rf"[A-Za-z]:[\\/](?:(?:[\w()&'\-]+(?: [\w()&'\-]+){{1,3}}|{_WIN_SEG})[\\/])*(?:{_WIN_SEG})?"
)
_UNC_PATH = re.compile(r"\\\\(?<![\w\\]..)[\w.$\-]+\\[^\s\"'<>|*?\x00]+")
_HOME_PATH = re.compile(r"~(?<![\w~/\\]~)(?:[A-Za-z_][\w.\-]*)?/[^\s\"'<>`|\x00]*")
_REL_PATH = re.compile(r"\.(?<![\w./\\\-]\.)\.?[\\/][^\s\"'<>`|\x00]*")
_ABS_PATH = re.compile(r"/(?<![\w.:/\\~\-\])]/)(?P<first>[\w.@+\-]+)(?:/[\w.@+\-]+)*/?")
_SLASH = re.compile("/")
_REL_EXT_PATH = re.compile(r"[\w.\-]+(?:/[\w.@+\-]+)+\.(?P<ext>[A-Za-z][A-Za-z0-9]{0,7})(?![\w/\-])")
_PATH_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_UNIX_ROOTS = frozenset(
    [
        "etc",
        "home",
        "root",
        "tmp",
        "var",
        "usr",
        "bin",
        "sbin",
        "opt",
        "proc",
        "sys",
        "dev",
        "mnt",
        "media",
        "srv",
        "boot",
        "lib",
        "lib64",
        "run",
        "private",
        "Users",
        "Library",
        "Applications",
        "Volumes",
        "System",
    ]
)
_FILE_EXT = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}\Z")
_SENTENCE_END = ".,;:!?)]}"


def _files(text: str, url_spans: list[Span], out: list[Span]) -> None:  # noqa: C901 - one branch per path shape
    found: list[Span] = []

    def add(start: int, end: int) -> None:
        while end > start + 1 and text[end - 1] in _SENTENCE_END:
            end -= 1
        for u in url_spans:
            if start < u.end and u.start < end:
                return
        found.append(Span(start, end, "file_path", FILE_BLOCKER, 1.0))

    if "file:" in text or "FILE:" in text or "File:" in text:
        for m in _FILE_URL.finditer(text):
            add(m.start(), m.end())
    for m in _WIN_ANCHOR.finditer(text):
        p = m.start() - 1
        if p < 0 or not text[p].isalpha() or (p > 0 and (text[p - 1].isalnum() or text[p - 1] in "_\\")):
            continue
        w = _WIN_PATH.match(text, p)
        if w:
            add(p, w.end())
    if "\\\\" in text:
        for m in _UNC_PATH.finditer(text):
            add(m.start(), m.end())
    if "~" in text:
        for m in _HOME_PATH.finditer(text):
            add(m.start(), m.end())
    for m in _REL_PATH.finditer(text):
        add(m.start(), m.end())
    if "/" in text:
        for m in _ABS_PATH.finditer(text):
            path = m.group().rstrip("/")
            if m.group("first") in _UNIX_ROOTS or _FILE_EXT.search(path):
                add(m.start(), m.end())
        covered = 0
        for m in _SLASH.finditer(text):
            p = m.start()
            if p < covered or p == 0 or text[p - 1] not in _PATH_WORD_CHARS:
                continue
            i = p
            while i > 0 and text[i - 1] in _PATH_WORD_CHARS:
                i -= 1
            if i > 0 and text[i - 1] in "/\\:@-":
                continue
            r = _REL_EXT_PATH.match(text, i)
            if r:
                add(i, r.end())
                covered = r.end()
    out.extend(found)


# ---------------------------------------------------------------------------------------------------------


class Detector:
    """Finds the spans of the enabled detectors in a text (the NUL-joined strings of one JSON value)."""

    __slots__ = ("pii", "urls", "files", "min_score")

    def __init__(self, *, pii: bool, urls: bool, files: bool, min_score: float = 0.5) -> None:
        self.pii = pii
        self.urls = urls
        self.files = files
        self.min_score = min_score

    def find(self, text: str) -> list[Span]:
        spans: list[Span] = []
        if self.urls or self.files:
            url_spans: list[Span] = []
            _urls(text, url_spans)
            if self.urls:
                spans.extend(url_spans)
            if self.files:
                _files(text, url_spans, spans)
        if self.pii:
            pii: list[Span] = []
            _pii(text, pii, spans if self.urls else [])
            spans.extend(s for s in pii if s.score >= self.min_score)
        return spans


def _pii(text: str, out: list[Span], covered: list[Span]) -> None:
    """PII spans of ``text``; numeric clusters inside ``covered`` spans (URLs that will be masked anyway) are
    skipped, and so are those inside IBANs (found first)."""
    if "@" in text:
        _emails(text, out)
    first = len(out)
    skip = [(s.start, s.end) for s in covered]
    _alpha_ids(text, out, skip)
    skip.extend((s.start, s.end) for s in out[first:] if s.kind == "iban")
    skip.sort()
    k = 0
    for m in _NUM.finditer(text):
        start, e = m.span()
        if e - start < 4:
            continue
        if text[e - 1] in _NUM_TRAILING:
            e = start + len(m.group().rstrip(_NUM_TRAILING))
            if e - start < 4:
                continue
        while k < len(skip) and skip[k][1] <= start:
            k += 1
        j = k
        while j < len(skip) and skip[j][0] <= start and skip[j][1] < e:
            j += 1
        if j < len(skip) and skip[j][0] <= start:
            continue  # inside a URL or an IBAN
        _digits_in_window(text, start, e, out)
    if "SSN" in text or "ssn" in text or "ecurity" in text:
        for m in _SSN_KEYWORD.finditer(text):
            if _us_ssn.is_valid(m.group(1)):
                out.append(Span(m.start(1), m.end(1), "national_id", PII, SCORES["national_id"]))
    if ":" in text:
        _ipv6(text, out)
    _names(text, out)


def resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Keep a non-overlapping subset: by priority of kind, then longer first; returned in text order."""
    if len(spans) <= 1:
        return spans
    ordered = sorted(spans, key=lambda s: (PRIORITY[s.kind], s.start - s.end, s.start))
    kept: list[Span] = []
    for s in ordered:
        if s.end <= s.start:
            continue
        if all(s.end <= k.start or k.end <= s.start for k in kept):
            kept.append(s)
    kept.sort(key=lambda s: s.start)
    return kept
