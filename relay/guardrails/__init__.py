"""Guardrails: content classifiers and blockers (the ``X-Features`` document).

Framework-free core; the relay wires it into both architectures. Nothing here does I/O: the LLM classifiers
are described as requests the caller sends to the session's QLLM (PLLM in single-LLM mode) through the
session's provider, and whose parsed replies it hands back.

API
===

::

    from relay.guardrails import (ClassificationError, ClassifierRequest, Finding, GuardrailOutcome, Guardrails,
                                  tag_meta, text_for_classification)

    g = Guardrails.from_features(classifiers, blockers)   # X-Features lists: [{"name", "threshold", "mode"}], [{"name"}]

    out = g.scan_deterministic(value, where="tool_args")   # or "tool_result"; value = any JSON
    out.value         # redacted/masked copy, same structure (the input object itself when nothing changed)
    out.findings      # tuple[Finding]: guardrail, kind, action, detail, span_count, tag, paths
    out.tags          # frozenset: "pii", "url", "file"
    out.blocked, out.block_reason   # tool_args only: "url_blocker: argument 'url' contains a URL"

    for req in g.classifier_requests(text_for_classification(out.value)):   # toxicity/healthcare/finance
        reply = <call the QLLM with req.messages() / req.system_prompt + req.user_prompt and structured
                 output req.json_schema (req.response_format() for OpenAI-style APIs); parse the JSON>
        try:
            finding = g.interpret_classification(req.name, reply)   # None below req.threshold
        except ClassificationError as exc:                           # reply is not {"score": number, ...}
            finding = g.classification_error(req.name, exc)          # logged, no tag; or fail closed
        out = out.with_finding(finding)                              # adds tag, may set blocked

    meta = tag_meta(meta, out)        # dual-LLM: the findings become tags of the value's metadata
    log(out.to_log())                 # every decision, JSON-safe, never containing the detected text

    ts = g.scan_text(text, where="tool_result")   # the same on a tool result's text (JSON or not):
    ts.outcome, ts.text, ts.edits     # the text with each span replaced in place (formatting kept) + the edits

    memo = session_memo(g, session_state)          # what was decided, by content hash, in the session state
    findings = await g.classify(text, ask, memo)   # LLM classifiers, each verdict asked once per distinct text

Every message the relay forwards to an LLM is guarded, on every turn and whoever produced it (clients resend
their whole history; some start a conversation elsewhere): in single-LLM mode every tool result and every
tool call's arguments in the request (``relay.toolcalls.guard``), in dual-LLM mode every tool result before
the program (and so the quarantined LLM) sees it. ``relay.guardrails.memo`` keeps what was decided about a
content by its hash in the session state (bounded; in-place edits, never the detected text), so a resent
history costs next to nothing (``bench/bench_guardrails.py``: ~0.3 ms for a 50-turn history) and the LLM
classifiers run once per distinct content.

``g.has_deterministic`` / ``g.llm_classifiers`` tell whether there is anything to do. Classification system
prompts start with ``CLASSIFIER_PROMPT_MARKER + ": " + name`` so a fake provider can recognise them. In
single-LLM mode scan the tool calls the model proposes (``where="tool_args"``: a blocked call is refused, a
redacted one is passed on redacted) and the tool results the client sends (``where="tool_result"``); in
dual-LLM mode do the same around each tool call and add ``tag_meta`` to the values' metadata.

Semantics (the spec leaves how a detection manifests open; these are the decisions)
-----------------------------------------------------------------------------------

=========================== ================================= ================================== ==========
guardrail                   tool call arguments (before)      tool results (after)               tag
=========================== ================================= ================================== ==========
pii_redaction               spans replaced, ``redacted``      spans replaced, ``redacted``       ``pii``
url_blocker                 call ``blocked`` (+ masked copy)  URLs ``masked`` ``[BLOCKED_URL]``  ``url``
file_blocker                call ``blocked`` (+ masked copy)  paths ``masked`` ``[BLOCKED_FILE]`` ``file``
toxicity_filter (LLM)       hit -> ``blocked``                hit -> ``blocked``                 ``toxic``
healthcare/finance (LLM)    hit -> ``flagged`` (tag only)     hit -> ``flagged``                 ``healthcare`` / ``finance``
=========================== ================================= ================================== ==========

PII placeholders: ``[REDACTED_EMAIL]``, ``[REDACTED_PHONE]``, ``[REDACTED_CREDIT_CARD]``, ``[REDACTED_IBAN]``,
``[REDACTED_IP]``, ``[REDACTED_ID]`` (national ids), ``[REDACTED_NAME]``. The redaction is in the value the
client and the LLM receive. The ``mode`` of a classifier overrides its threshold and can change the action:
"high sensitivity" = threshold 0.3, "low sensitivity" = 0.8, "strict" = 0.3 and topic guardrails block too,
"monitor" = only tag and log (nothing blocked or redacted), "normal"/null/unknown = the given threshold; the
full table is in ``relay.guardrails.classifiers``. For ``pii_redaction`` the threshold selects detectors by confidence
(``detectors.SCORES``): the default 0.5 uses all of them, "low sensitivity" (0.8) only checksummed or
unambiguous kinds (cards, IBANs, ids, e-mails, IPs, international phone numbers).

In tool-call arguments a value under a key such as ``url``/``link``/``endpoint`` (url_blocker) or
``path``/``file``/``filename``/``directory`` (file_blocker) counts as a URL / file path as a whole; person-name
keys (``full_name``, ``last_name``..., or ``name`` beside ``email``/``phone``...) are redacted as names.

What is detected
----------------
e-mail addresses; phone numbers (international ``+CC``/``00CC`` in any format, national NANP and trunk-0
GB/DE/FR formats), validated with libphonenumber's metadata; payment cards (Visa, Mastercard, Amex,
Discover, Diners, JCB, UnionPay, Maestro: issuer prefix + length + Luhn, so an invalid Luhn is not redacted);
IBANs of every country (country length + mod 97); IPv4/IPv6 (not loopback/unspecified); national ids: US SSN,
UK National Insurance number, Spanish DNI/NIE, Italian codice fiscale, Brazilian CPF, Indian Aadhaar, French
NIR, Swedish personnummer; person names only where the context says so (an honorific such as "Dr. Jane Doe",
a "Full name:" field, "Jane Doe <jane@x.org>", the line after "Best regards,"). URLs: ``scheme://``,
``www.``, bare domains under common TLDs. File paths: ``file://``, ``C:\\...``, UNC, ``~/...``, ``./x``,
``../x``, ``/etc/...``-style absolute paths (well-known roots, or ending in a file extension), ``dir/file.ext``.
Not paths: dates (10/12/2024), fractions, "and/or", MIME types, URL path parts.

Library choice
--------------
Presidio (analyzer + anonymizer) was evaluated first: offline it needs a stub NLP engine in place of the
spaCy model, its URL recognizer (tldextract) tries to download the public suffix list at run time, and it
took ~60 ms for 10 KB of tool results - 30x the 2 ms budget - because every recognizer makes its own pass
over the text. So candidates come from compiled regular expressions (anchored on rare characters, see
``detectors``) and are validated by well-kept focused libraries: ``phonenumbers`` (Google's libphonenumber
metadata), ``python-stdnum`` (Luhn, IBAN, national id checksums) and the stdlib ``ipaddress``. All strings of a
value are scanned together (``scan``). ``bench/bench_guardrails.py``: ~1.3 ms median for 10 KB of tool results
full of PII, URLs and paths, ~0.3 ms for 10 KB with nothing to find.

Known limits (no NLP model): names are found only in the contexts above (so "Dr. Pepper" is redacted and a
name in running prose is not); a bare ``name:`` label followed by two capitalised words is taken for a person;
code such as ``obj.net`` looks like a domain; a 13-19 digit number with a card issuer prefix and a valid Luhn
digit is redacted as a card.
"""

from .classifiers import (
    CLASSIFIER_PROMPT_MARKER,
    ClassificationError,
    ClassifierSetting,
    canonical_mode,
)
from .detectors import PLACEHOLDERS
from .engine import Guardrails, tag_meta, text_for_classification
from .memo import ScanMemo, bind_session_state, content_key, session_memo
from .types import (
    BLOCKER_NAMES,
    CLASSIFIER_NAMES,
    LLM_CLASSIFIER_NAMES,
    TAG_BY_GUARDRAIL,
    ClassifierRequest,
    Finding,
    GuardrailOutcome,
    TextScan,
)

__all__ = [
    "BLOCKER_NAMES",
    "CLASSIFIER_NAMES",
    "CLASSIFIER_PROMPT_MARKER",
    "LLM_CLASSIFIER_NAMES",
    "PLACEHOLDERS",
    "TAG_BY_GUARDRAIL",
    "ClassificationError",
    "ClassifierRequest",
    "ClassifierSetting",
    "Finding",
    "GuardrailOutcome",
    "Guardrails",
    "ScanMemo",
    "TextScan",
    "bind_session_state",
    "canonical_mode",
    "content_key",
    "session_memo",
    "tag_meta",
    "text_for_classification",
]
