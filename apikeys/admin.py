"""Operator console: users, keys (never a hash or secret) and encrypted provider credentials."""

from django import forms
from django.contrib import admin, messages

from . import services
from .models import ApiKey, ProviderCredential


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "arch", "created_at", "last_used_at", "revoked_at")
    list_filter = ("arch", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "user__username", "user__email")
    readonly_fields = ("prefix", "created_at", "updated_at", "last_used_at", "revoked_at")
    fields = ("user", "name", "prefix", "arch", "content_logging", "features", "policy", "config", *readonly_fields[1:])
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        # A key's secret must be shown once to its owner: keys are created in the dashboard or by command.
        return False

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request, queryset):
        revoked = sum(services.do_revoke_api_key(key=key) for key in queryset)
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)


class ProviderCredentialForm(forms.ModelForm):
    api_key = forms.CharField(
        widget=forms.PasswordInput(render_value=False), required=False,
        help_text="Stored encrypted. Leave empty to keep the current key.",
    )
    allowed_models = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False,
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
