"""Dashboard forms: create a key, configure its defences, and the one-time token against double submission.

How the simple fields and the "Advanced" JSON documents interact (configure form)
--------------------------------------------------------------------------------
The three JSON documents (``features``, ``policy``, ``config``) are what the key stores and exactly what the
``X-Features`` / ``X-Policy`` / ``X-Config`` headers carry. The simple fields (architecture, classifiers,
blockers, SQRT code) are a view of those documents:

* GET renders the simple fields *from* the stored documents.
* In the browser, ``static/js/configure.js`` keeps both in sync live: a change to a simple field rewrites the
  JSON, a valid edit of the JSON re-renders the simple fields.
* On POST, per document: if its JSON differs from what is stored (i.e. it was edited, by hand or by the
  script), the JSON is authoritative and used as is; otherwise the simple fields are applied to it. So the
  form also works without JavaScript, and a hand-edited document is never silently overwritten.
* The architecture is the radio, unless only the features JSON changed it (then the JSON's ``agent_arch``).
  Switching the architecture also swaps the policy/config documents for the new architecture's preset when
  they still equal the old architecture's preset (the policy's SQRT code is kept), as a new key would have.
* Everything is then validated by ``apikeys.validation.validate_documents`` (through the service); its errors
  are put next to the field they concern, and nothing is saved.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
from decimal import Decimal

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.core import signing
from django.core.cache import cache

from relay.config import PRESETS, preset_documents

from .models import Architecture, BudgetPeriod, ContentLogging

DOCUMENTS = ("features", "policy", "config")
HEADER_NAMES = {"features": "X-Features", "policy": "X-Policy", "config": "X-Config"}

ARCH_INFO = {
    "dual-llm": {
        "label": "Dual LLM",
        "badge": "guaranteed",
        "description": "Guaranteed isolation: a planner LLM turns your instructions into a program, a "
        "quarantined LLM reads untrusted data, and your policy is enforced on every tool call.",
    },
    "single-llm": {
        "label": "Single LLM",
        "badge": "high probabilistic",
        "description": "One LLM plans and executes the task; Sequrity adds guardrails and policy "
        "enforcement on tool calls.",
    },
}

CLASSIFIERS = {
    "pii_redaction": (
        "PII redaction",
        "Finds and redacts personally identifiable information (names, emails, "
        "phone numbers) in tool-call arguments and results.",
    ),
    "toxicity_filter": (
        "Toxicity filter",
        "Flags toxic, harmful or abusive content before and after tool calls.",
    ),
    "healthcare_topic_guardrail": (
        "Healthcare topic guardrail",
        "Flags healthcare topics that need professional advice.",
    ),
    "finance_topic_guardrail": (
        "Finance topic guardrail",
        "Flags finance topics that need professional advice.",
    ),
}
# The order in which the form writes classifiers (the order of the X-Features example in the spec).
CLASSIFIER_ORDER = (
    "toxicity_filter",
    "pii_redaction",
    "healthcare_topic_guardrail",
    "finance_topic_guardrail",
)
BLOCKERS = {
    "url_blocker": ("URL blocker", "Blocks URL access in tool calls."),
    "file_blocker": ("File blocker", "Blocks file access in tool calls."),
}
MODES = [
    ("normal", "Normal"),
    ("high sensitivity", "High sensitivity"),
    ("low sensitivity", "Low sensitivity"),
    ("strict", "Strict"),
]
DEFAULT_THRESHOLD = 0.5
DEFAULT_MODE = "normal"

DEFENCE_LABELS = {name: label for name, (label, _) in {**CLASSIFIERS, **BLOCKERS}.items()}


def dump_json(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)


# --- one-time form tokens ---------------------------------------------------------------------------------

TOKEN_MAX_AGE = 12 * 3600
_TOKEN_PENDING = "pending"


def issue_form_token(user) -> str:
    """A signed, user-bound nonce; each may be claimed once (see :func:`claim_form_token`)."""
    return signing.dumps(secrets.token_urlsafe(16), salt=f"apikeys.form-token:{user.pk}")


def _token_cache_key(nonce: str) -> str:
    return f"apikeys:form-token:{nonce}"


def claim_form_token(nonce: str) -> bool:
    """Atomically claim a token (``cache.add``: SET NX in Redis, a unique insert in the database cache)."""
    return cache.add(_token_cache_key(nonce), _TOKEN_PENDING, timeout=TOKEN_MAX_AGE)


def complete_form_token(nonce: str, result) -> None:
    cache.set(_token_cache_key(nonce), result, timeout=TOKEN_MAX_AGE)


def release_form_token(nonce: str) -> None:
    cache.delete(_token_cache_key(nonce))


def form_token_result(nonce: str):
    value = cache.get(_token_cache_key(nonce))
    return None if value == _TOKEN_PENDING else value


def arch_options(bound_field) -> list[dict]:
    """The architecture radios with their label, badge and description (the option cards)."""
    return [
        {"value": w.data["value"], "radio": w, "info": ARCH_INFO.get(w.data["value"], {})}
        for w in bound_field.subwidgets
    ]


# --- accounts -------------------------------------------------------------------------------------------


class SignupForm(UserCreationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update({"autofocus": True, "autocomplete": "username"})


# --- create ---------------------------------------------------------------------------------------------

_UNKNOWN_PRESET = "Unknown preset “%(value)s”: choose Dual LLM or Single LLM."


class CreateKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Production agent", "autofocus": True}),
        help_text="Only for you, to recognise the key in lists.",
    )
    arch = forms.ChoiceField(
        label="Architecture preset",
        choices=[(a, ARCH_INFO[a]["label"]) for a in ("dual-llm", "single-llm")],
        initial=Architecture.DUAL_LLM,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": _UNKNOWN_PRESET},
    )
    token = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["token"] = issue_form_token(user)

    def clean_token(self) -> str:
        """The token's nonce, if the token is this user's and not too old."""
        try:
            return signing.loads(
                self.cleaned_data["token"], salt=f"apikeys.form-token:{self.user.pk}", max_age=TOKEN_MAX_AGE
            )
        except signing.BadSignature:
            raise forms.ValidationError("This form has expired. Please submit it again.") from None

    def arch_options(self):
        return arch_options(self["arch"])

    def refresh_token(self) -> None:
        """Re-rendered after an expired token: give the next submission a fresh one."""
        data = self.data.copy()
        data["token"] = issue_form_token(self.user)
        self.data = data


# --- configure ------------------------------------------------------------------------------------------


def _strip_code(policy: dict) -> dict:
    policy = copy.deepcopy(policy)
    if isinstance(policy.get("codes"), dict):
        policy["codes"]["code"] = ""
    return policy


class ConfigureKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    content_logging = forms.ChoiceField(
        label="Session log",
        choices=ContentLogging.choices,
        required=False,
        help_text="What the session inspector keeps of this key's sessions, in both architectures. "
        "<b>Metadata only</b> logs messages, tool-call arguments and final values, and tool results "
        "as their metadata (tags, size); <b>Full content</b> also logs tool results; <b>Nothing</b> "
        "keeps only the structure (tool names, verdicts, rules).",
    )
    arch = forms.ChoiceField(
        label="Architecture",
        choices=[(a, ARCH_INFO[a]["label"]) for a in ("dual-llm", "single-llm")],
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": _UNKNOWN_PRESET},
    )
    policy_code = forms.CharField(
        label="SQRT policy",
        required=False,
        strip=False,
        widget=forms.Textarea(
            attrs={
                "rows": 10,
                "spellcheck": "false",
                "autocapitalize": "off",
                "autocomplete": "off",
                "wrap": "off",
                "class": "code-input",
                "placeholder": 'tool "send_email" {\n    hard deny when "pii" in body.tags;\n}',
            }
        ),
    )
    features_json = forms.CharField(label="X-Features", required=False, strip=False)
    policy_json = forms.CharField(label="X-Policy", required=False, strip=False)
    config_json = forms.CharField(label="X-Config", required=False, strip=False)

    def __init__(self, *args, key, **kwargs):
        self.key = key
        self.stored = copy.deepcopy(key.documents)
        super().__init__(*args, **kwargs)
        for kind in DOCUMENTS:
            self.fields[f"{kind}_json"].widget = forms.Textarea(
                attrs={
                    "rows": 8,
                    "spellcheck": "false",
                    "class": "code-input json-input",
                    "wrap": "off",
                    "data-document": kind,
                    "autocomplete": "off",
                }
            )
        modes = list(MODES)
        for name, (label, _) in CLASSIFIERS.items():
            self.fields[name] = forms.BooleanField(label=label, required=False)
            self.fields[f"{name}_threshold"] = forms.FloatField(
                label="Threshold",
                required=False,
                min_value=0.0,
                max_value=1.0,
                widget=forms.NumberInput(
                    attrs={"step": "0.05", "min": "0", "max": "1", "class": "input-threshold"}
                ),
                error_messages={
                    "min_value": "threshold: must be between 0 and 1",
                    "max_value": "threshold: must be between 0 and 1",
                    "invalid": "threshold: enter a number between 0 and 1",
                },
            )
            current = self._classifier(name)
            choices = list(modes)
            if current and current.get("mode") and current["mode"] not in dict(modes):
                choices.append((current["mode"], current["mode"]))  # a free-form mode set in the JSON
            if (
                self.is_bound
                and self.data.get(f"{name}_mode")
                and self.data[f"{name}_mode"] not in dict(choices)
            ):
                choices.append((self.data[f"{name}_mode"], self.data[f"{name}_mode"]))
            self.fields[f"{name}_mode"] = forms.ChoiceField(
                label="Mode",
                required=False,
                choices=[("", "Threshold only"), *choices],
            )
        for name, (label, _) in BLOCKERS.items():
            self.fields[name] = forms.BooleanField(label=label, required=False)
        self.initial.update(self._initial_from_documents())

    # -- rendering from the documents --

    def _classifier(self, name: str) -> dict | None:
        for item in self.stored["features"].get("content_classifiers") or []:
            if item.get("name") == name:
                return item
        return None

    def _initial_from_documents(self) -> dict:
        docs = self.stored
        initial = {
            "name": self.key.name,
            "arch": docs["features"].get("agent_arch") or self.key.arch,
            "content_logging": self.key.content_logging,
        }
        for name in CLASSIFIERS:
            item = self._classifier(name)
            initial[name] = item is not None
            initial[f"{name}_threshold"] = (
                item.get("threshold", DEFAULT_THRESHOLD) if item else DEFAULT_THRESHOLD
            )
            initial[f"{name}_mode"] = (item.get("mode") or "") if item else DEFAULT_MODE
        blockers = {b.get("name") for b in docs["features"].get("content_blockers") or []}
        for name in BLOCKERS:
            initial[name] = name in blockers
        initial["policy_code"] = ((docs["policy"].get("codes") or {}).get("code")) or ""
        for kind in DOCUMENTS:
            initial[f"{kind}_json"] = dump_json(docs[kind])
        return initial

    # -- template helpers --

    def arch_options(self):
        return arch_options(self["arch"])

    def classifier_rows(self):
        return [
            {
                "name": n,
                "label": CLASSIFIERS[n][0],
                "description": CLASSIFIERS[n][1],
                "enabled": self[n],
                "threshold": self[f"{n}_threshold"],
                "mode": self[f"{n}_mode"],
            }
            for n in CLASSIFIERS
        ]

    def blocker_rows(self):
        return [
            {"name": n, "label": BLOCKERS[n][0], "description": BLOCKERS[n][1], "enabled": self[n]}
            for n in BLOCKERS
        ]

    def document_fields(self):
        return [self[f"{kind}_json"] for kind in DOCUMENTS]

    @property
    def advanced_has_errors(self) -> bool:
        return any(self.has_error(f"{kind}_json") for kind in DOCUMENTS)

    # -- cleaning --

    def clean(self):  # noqa: C901 - one pass over the form's fields, each check a line
        data = super().clean()
        docs: dict[str, dict] = {}
        for kind in DOCUMENTS:
            if f"{kind}_json" not in self.data:  # not posted at all: the stored document, untouched
                docs[kind] = copy.deepcopy(self.stored[kind])
                continue
            raw = data.get(f"{kind}_json")
            if raw is None:
                continue
            if not raw.strip():
                docs[kind] = {}
                continue
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                self.add_error(f"{kind}_json", f"Invalid JSON: {exc}")
                continue
            if not isinstance(parsed, dict):
                self.add_error(f"{kind}_json", "must be a JSON object")
                continue
            docs[kind] = parsed
        if self.errors:
            return data
        edited = {kind: docs[kind] != self.stored[kind] for kind in DOCUMENTS}
        stored_arch = self.stored["features"].get("agent_arch") or self.key.arch
        arch = data["arch"]
        json_arch = docs["features"].get("agent_arch")
        if edited["features"] and json_arch in PRESETS and arch == stored_arch:
            arch = json_arch  # only the JSON changed the architecture

        if arch != stored_arch and stored_arch in PRESETS and arch in PRESETS:
            old, new = preset_documents(stored_arch), preset_documents(arch)
            if not edited["config"] and docs["config"] == old["config"]:
                docs["config"] = new["config"]
            if not edited["policy"] and _strip_code(docs["policy"]) == _strip_code(old["policy"]):
                code = (docs["policy"].get("codes") or {}).get("code", "")
                docs["policy"] = new["policy"]
                docs["policy"]["codes"]["code"] = code

        if not edited["features"]:
            docs["features"] = self._features_from_fields(docs["features"], arch, data)
        if not edited["policy"]:
            code = (data.get("policy_code") or "").replace("\r\n", "\n")
            codes = docs["policy"].get("codes")
            if isinstance(codes, dict):
                codes["code"] = code
            elif isinstance(codes, str) or code.strip():
                docs["policy"]["codes"] = {"code": code, "language": "sqrt"}
        data["arch"] = arch
        data["documents"] = docs
        data["edited"] = edited
        return data

    def _features_from_fields(self, features: dict, arch: str, data: dict) -> dict:
        features = dict(features)
        features["agent_arch"] = arch
        classifiers = []
        for name in CLASSIFIER_ORDER:
            if data.get(name):
                threshold = data.get(f"{name}_threshold")
                item = {"name": name, "threshold": DEFAULT_THRESHOLD if threshold is None else threshold}
                if data.get(f"{name}_mode"):
                    item["mode"] = data[f"{name}_mode"]
                classifiers.append(item)
        blockers = [{"name": name} for name in BLOCKERS if data.get(name)]
        for field, items in (("content_classifiers", classifiers), ("content_blockers", blockers)):
            if items:
                features[field] = items
            else:
                features.pop(field, None)
        return features

    # -- errors from validate_documents --

    _CLASSIFIER_ERROR = re.compile(r"^content_classifiers\[(\d+)\]\.(threshold|mode)\b")

    def add_document_errors(self, errors: dict[str, list[str]]) -> None:
        """Put each error of :class:`~apikeys.validation.DocumentsInvalid` next to the field it concerns."""
        edited = self.cleaned_data.get("edited") or {}
        docs = self.cleaned_data.get("documents") or {}
        for doc, messages in errors.items():
            for message in messages:
                self.add_error(self._field_for(doc, message, edited, docs), message)

    def _field_for(self, doc: str, message: str, edited: dict, docs: dict) -> str:
        if doc == "arch":
            return "arch"
        if doc == "policy":
            return "policy_code" if message.startswith("codes.code") else "policy_json"
        if doc == "features" and not edited.get("features"):
            match = self._CLASSIFIER_ERROR.match(message)
            items = (docs.get("features") or {}).get("content_classifiers") or []
            if match and int(match.group(1)) < len(items):
                return f"{items[int(match.group(1))]['name']}_{match.group(2)}"
        return f"{doc}_json" if doc in DOCUMENTS else "features_json"


# --- governance: expiry, lists, limits, budget, stored provider credential (apikeys.governance) ----------------


def _lines(raw: str) -> list[str]:
    return list(
        dict.fromkeys(part.strip() for part in (raw or "").replace(",", "\n").splitlines() if part.strip())
    )


class KeyLimitsForm(forms.Form):
    """The "Limits and access" section of the configure page (form prefix ``limits``).

    Posted together with :class:`ConfigureKeyForm`; a POST without this section's marker field (an older page,
    a script) leaves the key's governance as it is. The stored provider credential is write-only: the field is
    never filled in, an empty value keeps the stored one, and "remove" deletes it."""

    present = forms.CharField(widget=forms.HiddenInput, initial="1")
    expires_at = forms.DateTimeField(
        label="Expires",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="UTC. After this moment the key is refused (HTTP 401). Empty: never expires.",
    )
    allowed_providers = forms.MultipleChoiceField(
        label="Allowed providers",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any provider.",
    )
    allowed_models = forms.CharField(
        label="Allowed models",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 3, "spellcheck": "false", "class": "mono", "placeholder": "gpt-5-mini\nopenai/*"}
        ),
        help_text="One per line; <code>*</code> and <code>?</code> match any text / one character. Empty: any "
        "model. Others are refused (HTTP 403).",
    )
    rpm_limit = forms.IntegerField(
        label="Requests per minute",
        required=False,
        min_value=1,
        widget=forms.NumberInput(attrs={"placeholder": "no limit"}),
    )
    tpm_limit = forms.IntegerField(
        label="Tokens per minute",
        required=False,
        min_value=1,
        widget=forms.NumberInput(attrs={"placeholder": "no limit"}),
        help_text="Prompt and completion tokens. Over a limit: HTTP 429 with Retry-After.",
    )
    budget_usd = forms.DecimalField(
        label="Budget (USD)",
        required=False,
        min_value=Decimal(0),
        max_digits=15,
        decimal_places=6,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "placeholder": "no budget"}),
        help_text="Spend limit, priced like credits. When it is used up: HTTP 402 until the period resets.",
    )
    budget_period = forms.ChoiceField(
        label="Per", choices=BudgetPeriod.choices, initial=BudgetPeriod.MONTH, required=False
    )
    budget_soft_percent = forms.IntegerField(
        label="Warn at (%)",
        min_value=1,
        max_value=100,
        initial=80,
        required=False,
        help_text="The key list flags the key once this share of the budget is used.",
    )
    provider_key = forms.CharField(
        label="Provider API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "placeholder": "sk-…"}
        ),
        help_text="Stored encrypted and never shown again; used when a request has no X-Api-Key. Leave empty "
        "to keep the stored one.",
    )
    provider_key_provider = forms.ChoiceField(label="For provider", required=False)
    remove_provider_key = forms.BooleanField(label="Remove the stored provider key", required=False)

    def __init__(self, *args, key, **kwargs):
        from .models import Provider

        self.key = key
        kwargs.setdefault("prefix", "limits")
        super().__init__(*args, **kwargs)
        self.fields["allowed_providers"].choices = Provider.choices
        self.fields["provider_key_provider"].choices = [("", "Any provider"), *Provider.choices]
        if not self.is_bound:
            self.initial.update(
                {
                    "expires_at": key.expires_at,
                    "allowed_providers": list(key.allowed_providers or []),
                    "allowed_models": "\n".join(key.allowed_models or []),
                    "rpm_limit": key.rpm_limit,
                    "tpm_limit": key.tpm_limit,
                    "budget_period": key.budget_period,
                    "budget_soft_percent": key.budget_soft_percent,
                    "provider_key_provider": key.provider_key_provider,
                    "budget_usd": None
                    if key.budget_nano is None
                    else (Decimal(key.budget_nano) / 10**9).normalize(),
                }
            )

    def clean_allowed_models(self) -> list[str]:
        names = _lines(self.cleaned_data.get("allowed_models"))
        for name in names:
            if len(name) > 200:
                raise forms.ValidationError("A model name is at most 200 characters.")
        return names

    def clean(self):
        data = super().clean()
        if data.get("provider_key") and data.get("remove_provider_key"):
            self.add_error("remove_provider_key", "Either enter a new provider key or remove the stored one.")
        return data

    def values(self) -> dict:
        """The ``ApiKey`` fields to save."""
        from django.utils import timezone

        from . import crypto

        data = self.cleaned_data
        budget = data.get("budget_usd")
        out = {
            "expires_at": data.get("expires_at"),
            "allowed_providers": list(data.get("allowed_providers") or []),
            "allowed_models": data.get("allowed_models") or [],
            "rpm_limit": data.get("rpm_limit"),
            "tpm_limit": data.get("tpm_limit"),
            "budget_nano": None if budget is None else int((budget * 10**9).to_integral_value()),
            "budget_period": data.get("budget_period") or BudgetPeriod.MONTH,
            "budget_soft_percent": data.get("budget_soft_percent") or 80,
            "provider_key_provider": data.get("provider_key_provider") or "",
        }
        if data.get("provider_key"):
            out.update(
                encrypted_provider_key=crypto.encrypt(data["provider_key"]),
                provider_key_set_at=timezone.now(),
            )
        elif data.get("remove_provider_key"):
            out.update(encrypted_provider_key="", provider_key_set_at=None)
        return out
