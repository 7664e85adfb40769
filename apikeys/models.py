"""API keys (one user's relay credentials with their stored configuration) and server-managed provider keys."""

from django.conf import settings
from django.db import models


class Architecture(models.TextChoices):
    SINGLE_LLM = "single-llm", "Single LLM"
    DUAL_LLM = "dual-llm", "Dual LLM"


class ContentLogging(models.TextChoices):
    """What the session log keeps of tool content (``relay.session_log``), the same in both architectures."""

    NONE = "none", "Nothing: structure only (tool names, verdicts, rules)"
    METADATA = "metadata", "Metadata only: tool results as their metadata (default)"
    FULL = "full", "Full content: tool results too"


class BudgetPeriod(models.TextChoices):
    DAY = "day", "Per day (UTC)"
    MONTH = "month", "Per calendar month (UTC)"


class ApiKey(models.Model):
    """A relay key. The secret (``sq-`` + 32 random bytes) is stored only as a SHA-256 hash.

    ``prefix`` (the first characters of the secret) is not secret and is what lookups and lists use.
    The three documents are exactly what the ``X-Features``, ``X-Policy`` and ``X-Config`` headers carry.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64, editable=False)
    arch = models.CharField("architecture", max_length=16, choices=Architecture.choices)
    features = models.JSONField(default=dict, blank=True)
    policy = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    content_logging = models.CharField(
        "session log content",
        max_length=16,
        choices=ContentLogging.choices,
        default=ContentLogging.METADATA,
        help_text="What the session log keeps of messages, tool calls, tool results and final values.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    # Governance (``apikeys.governance``): expiry, model/provider lists, rate limits, budget, stored credential.
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="After this moment the key is refused (HTTP 401). Empty: never expires.",
    )
    allowed_providers = models.JSONField(
        default=list, blank=True, help_text="Providers this key may use (empty: any)."
    )
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model names this key may use; * and ? wildcards (empty: any)."
    )
    rpm_limit = models.PositiveIntegerField(
        "requests per minute", null=True, blank=True, help_text="Empty: no limit. Shared by every worker."
    )
    tpm_limit = models.PositiveBigIntegerField(
        "tokens per minute", null=True, blank=True, help_text="Empty: no limit. Shared by every worker."
    )
    budget_nano = models.PositiveBigIntegerField(
        "budget (nano-USD)",
        null=True,
        blank=True,
        help_text="Spend limit per period in nano-dollars (1e-9 USD), priced like credits. Empty: no budget.",
    )
    budget_period = models.CharField(max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    budget_soft_percent = models.PositiveSmallIntegerField(
        "soft threshold (%)",
        default=80,
        help_text="The dashboard warns when this share of the budget is used.",
    )
    # The key's own provider credential ("virtual key"): Fernet token (apikeys.crypto), never shown again.
    encrypted_provider_key = models.TextField(blank=True, default="", editable=False)
    provider_key_provider = models.CharField(
        "stored credential's provider",
        max_length=32,
        blank=True,
        default="",
        help_text="Which provider the stored credential is for (empty: every provider).",
    )
    provider_key_set_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The saved configuration the relay enforces (``apikeys.versions``); recorded with each tool-call decision.
    current_version = models.ForeignKey(
        "KeyVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def documents(self) -> dict:
        return {"features": self.features, "policy": self.policy, "config": self.config}

    @property
    def is_expired(self) -> bool:
        from django.utils import timezone

        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def has_provider_key(self) -> bool:
        return bool(self.encrypted_provider_key)


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    OPENROUTER = "openrouter", "OpenRouter"
    ANTHROPIC = "anthropic", "Anthropic"
    SEQURITY_AZURE = "sequrity_azure", "Sequrity Azure"


class ProviderCredential(models.Model):
    """The server-managed key of one provider, used for requests without ``X-Api-Key``.

    The key is encrypted at rest (see ``apikeys.crypto``); only listed models may be used with it.
    """

    provider = models.CharField(max_length=32, choices=Provider.choices, unique=True)
    encrypted_api_key = models.TextField(editable=False)
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model names allowed with this key."
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.get_provider_display()


class AccessToken(models.Model):
    """A personal access token of the management API (``/api/v1/``; see ``apikeys.tokens``).

    Like a relay key, the token (``sqat-`` + 32 random bytes) is stored only as a SHA-256 hash and looked up by
    its non-secret ``prefix``; the distinct ``sqat-`` prefix keeps tokens and relay keys apart (the relay only
    accepts ``sq-`` secrets, the management API only ``sqat-`` ones).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "access token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        from django.utils import timezone

        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired


class LimitCounter(models.Model):
    """A key's usage in one window, for the embedded (database) governance store (``apikeys.governance``):
    requests (``r``) or tokens (``t``) in one minute, spend in nano-dollars (``b``) in one budget period.

    Reservations are ``UPDATE ... SET used = used + n WHERE ... AND used < limit`` in one transaction, so they
    are race-free on PostgreSQL (row lock, condition re-checked) and SQLite (one writer). With Redis the
    counters live there instead and this table stays empty.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="limit_counters")
    kind = models.CharField(max_length=1)
    window = models.BigIntegerField(help_text="Epoch minute (r, t) or period id YYYYMMDD / YYYYMM (b).")
    used = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "kind", "window"], name="limit_counter_window")
        ]

    def __str__(self) -> str:
        return f"{self.api_key_id}:{self.kind}:{self.window}={self.used}"


class VersionSource(models.TextChoices):
    CREATED = "created", "Created"
    INITIAL = "initial", "Configuration before versions were kept"
    DASHBOARD = "dashboard", "Saved in the dashboard"
    API = "api", "Saved through the management API"
    ADMIN = "admin", "Saved in the operator's console"
    REVERT = "revert", "Reverted"


class KeyVersion(models.Model):
    """One saved configuration of a key (architecture and its three documents), kept so an author can see who
    changed what, diff two versions and go back. Versions are never edited; a revert saves a new one.

    ``number`` counts a key's versions from 1; ``ApiKey.current_version`` is the one the relay enforces, and
    every tool-call decision the session log records names it (``policy_version``).
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    arch = models.CharField("architecture", max_length=16, choices=Architecture.choices)
    features = models.JSONField(default=dict, blank=True)
    policy = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    saved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    saved_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=16, choices=VersionSource.choices, default=VersionSource.DASHBOARD)
    reverted_from = models.PositiveIntegerField(
        null=True, blank=True, help_text="The number this one restored."
    )

    class Meta:
        ordering = ["api_key", "-number"]
        constraints = [models.UniqueConstraint(fields=["api_key", "number"], name="key_version_number")]

    def __str__(self) -> str:
        return f"{self.api_key_id} v{self.number}"

    @property
    def documents(self) -> dict:
        return {"features": self.features, "policy": self.policy, "config": self.config}
