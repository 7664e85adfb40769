"""Operator console: users, keys (never a hash or secret) and encrypted provider credentials."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils.html import format_html_join

from . import services
from .models import ApiKey, KeyVersion, Provider, ProviderCredential, VersionSource
from .selectors import forget_cached_key
from .versions import record_version


class ApiKeyAdminForm(forms.ModelForm):
    """Governance fields in operator terms: the budget in USD, model names one per line, and the key's own
    provider credential write-only (encrypted, never shown; empty keeps it)."""

    allowed_providers = forms.MultipleChoiceField(
        choices=Provider.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any provider.",
    )
    allowed_models_text = forms.CharField(
        label="Allowed models",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line; * and ? wildcards. Empty: any model.",
    )
    budget_usd = forms.DecimalField(
        label="Budget (USD)",
        required=False,
        min_value=Decimal(0),
        max_digits=15,
        decimal_places=6,
        help_text="Spend limit per period, priced like credits. Empty: no budget.",
    )
    provider_key = forms.CharField(
        label="Provider API key",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The key's own provider credential, stored encrypted. Leave empty to keep the current one.",
    )
    remove_provider_key = forms.BooleanField(label="Remove the stored provider key", required=False)

    class Meta:
        model = ApiKey
        fields = (
            "user",
            "name",
            "arch",
            "content_logging",
            "features",
            "policy",
            "config",
            "expires_at",
            "rpm_limit",
            "tpm_limit",
            "budget_period",
            "budget_soft_percent",
            "provider_key_provider",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider_key_provider"] = forms.ChoiceField(
            label="Provider key is for", required=False, choices=[("", "Any provider"), *Provider.choices]
        )
        key = self.instance
        if key.pk:
            self.initial["allowed_providers"] = list(key.allowed_providers or [])
            self.initial["allowed_models_text"] = "\n".join(key.allowed_models or [])
            if key.budget_nano is not None:
                self.initial["budget_usd"] = (Decimal(key.budget_nano) / 10**9).normalize()

    def clean(self):
        data = super().clean()
        if data.get("provider_key") and data.get("remove_provider_key"):
            self.add_error("remove_provider_key", "Either enter a new provider key or remove the stored one.")
        return data

    def save(self, commit=True):
        from django.utils import timezone

        from . import crypto
        from .forms import _lines

        key = super().save(commit=False)
        data = self.cleaned_data
        key.allowed_providers = list(data.get("allowed_providers") or [])
        key.allowed_models = _lines(data.get("allowed_models_text") or "")
        budget = data.get("budget_usd")
        key.budget_nano = None if budget is None else int((budget * 10**9).to_integral_value())
        if data.get("provider_key"):
            key.encrypted_provider_key = crypto.encrypt(data["provider_key"].strip())
            key.provider_key_set_at = timezone.now()
        elif data.get("remove_provider_key"):
            key.encrypted_provider_key, key.provider_key_set_at = "", None
        if commit:
            key.save()
        return key


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyAdminForm
    list_display = ("name", "prefix", "user", "arch", "limits", "created_at", "last_used_at", "revoked_at")
    list_filter = ("arch", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "user__username", "user__email")
    readonly_fields = (
        "prefix",
        "created_at",
        "updated_at",
        "last_used_at",
        "revoked_at",
        "provider_key_set_at",
        "versions",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "user",
                    "name",
                    "prefix",
                    "arch",
                    "content_logging",
                    "features",
                    "policy",
                    "config",
                    "created_at",
                    "updated_at",
                    "last_used_at",
                    "revoked_at",
                )
            },
        ),
        ("Versions", {"fields": ("versions",), "classes": ("collapse",)}),
        (
            "Limits and access",
            {
                "fields": (
                    "expires_at",
                    "allowed_providers",
                    "allowed_models_text",
                    "rpm_limit",
                    "tpm_limit",
                    "budget_usd",
                    "budget_period",
                    "budget_soft_percent",
                    "provider_key",
                    "provider_key_provider",
                    "remove_provider_key",
                    "provider_key_set_at",
                )
            },
        ),
    )
    actions = ["revoke_selected"]

    def save_model(self, request, obj, form, change):
        # An operator's edit of the documents is a version like any other save (who, when, revertible).
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            record_version(key=obj, saved_by=request.user, source=VersionSource.ADMIN)
        forget_cached_key(obj.prefix)

    @admin.display(description="Saved configurations")
    def versions(self, obj):
        """Newest first, read-only: the dashboard's Configure page diffs and reverts them."""
        rows = KeyVersion.objects.filter(api_key=obj).select_related("saved_by").order_by("-number")[:50]
        return (
            format_html_join(
                "\n",
                "<div>v{} · {} · {} · {}{}</div>",
                (
                    (
                        v.number,
                        v.get_arch_display(),
                        v.get_source_display(),
                        v.saved_by or "—",
                        f" · {v.saved_at:%Y-%m-%d %H:%M}",
                    )
                    for v in rows
                ),
            )
            or "—"
        )

    @admin.display(description="Limits")
    def limits(self, obj):
        parts = []
        if obj.rpm_limit:
            parts.append(f"{obj.rpm_limit} req/min")
        if obj.tpm_limit:
            parts.append(f"{obj.tpm_limit} tok/min")
        if obj.budget_nano is not None:
            parts.append(f"${Decimal(obj.budget_nano) / 10**9:.2f}/{obj.budget_period}")
        if obj.expires_at:
            parts.append(f"expires {obj.expires_at:%Y-%m-%d}")
        return ", ".join(parts) or "—"

    def has_add_permission(self, request):
        # A key's secret must be shown once to its owner: keys are created in the dashboard or by command.
        return False

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request, queryset):
        revoked = sum(services.do_revoke_api_key(key=key) for key in queryset)
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)


class ProviderCredentialForm(forms.ModelForm):
    api_key = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Stored encrypted. Leave empty to keep the current key.",
    )
    allowed_models = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="One model name per line. Requests without X-Api-Key may only use these.",
    )

    class Meta:
        model = ProviderCredential
        fields = ("provider", "enabled")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["allowed_models"] = "\n".join(self.instance.allowed_models or [])

    def clean_allowed_models(self):
        raw = self.cleaned_data.get("allowed_models") or ""
        return [line.strip() for line in raw.replace(",", "\n").splitlines() if line.strip()]

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not data.get("api_key"):
            self.add_error("api_key", "A new credential needs its API key.")
        return data

    def save(self, commit=True):
        from . import crypto

        obj = super().save(commit=False)
        obj.allowed_models = self.cleaned_data["allowed_models"]
        if self.cleaned_data.get("api_key"):
            obj.encrypted_api_key = crypto.encrypt(self.cleaned_data["api_key"])
        if commit:
            obj.save()
        return obj


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(admin.ModelAdmin):
    form = ProviderCredentialForm
    list_display = ("provider", "enabled", "model_count", "updated_at")

    @admin.display(description="Allowed models")
    def model_count(self, obj):
        return len(obj.allowed_models or [])
