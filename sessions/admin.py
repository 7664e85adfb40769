"""Operator console: the session/usage log (read-only), prices (editable) and credit grants (add-only ledger)."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from . import services
from .models import CreditAccount, CreditGrant, Price, RelaySession, UsageEvent, nano_to_usd


class ReadOnlyAdmin(admin.ModelAdmin):
    """Log rows are written by the Celery tasks only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RelaySession)
class RelaySessionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "api_key",
        "arch",
        "status",
        "turns",
        "requests",
        "total_tokens",
        "created_at",
        "last_activity",
        "inspect",
    )
    list_filter = ("status", "arch", "api", "provider", "closed")
    search_fields = ("id", "api_key__prefix", "api_key__name", "api_key__user__username")
    list_select_related = ("api_key",)
    date_hierarchy = "created_at"
    exclude = ("state_at",)
    show_full_result_count = False

    @admin.display(description="Inspector")
    def inspect(self, obj):
        return format_html('<a href="{}">Open</a>', reverse("dashboard:session_detail", args=[obj.pk]))


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "api_key",
        "api",
        "provider",
        "model",
        "status_code",
        "error_kind",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "cost",
    )
    list_filter = ("status_code", "api", "provider", "arch", "streamed")
    search_fields = ("event_id", "session_id", "api_key__prefix", "model")
    list_select_related = ("api_key",)
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="Cost (USD)")
    def cost(self, obj):
        return nano_to_usd(obj.cost_nano)


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ("label", "code", "kind", "usd_per_million", "updated_at")
    list_editable = ("usd_per_million",)
    list_filter = ("kind",)
    search_fields = ("code", "label")


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = ("user", "balance_usd", "spent_usd", "updated_at")
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    fields = ("user", "balance_usd", "spent_usd", "updated_at")
    readonly_fields = fields

    @admin.display(description="Balance (USD)", ordering="balance_nano")
    def balance_usd(self, obj):
        return obj.balance

    @admin.display(description="Spent (USD)", ordering="spent_nano")
    def spent_usd(self, obj):
        return obj.spent


@admin.register(CreditGrant)
class CreditGrantAdmin(admin.ModelAdmin):
    """Adding a grant credits the user's balance; grants are a ledger, so they are never edited or deleted
    (add a negative grant to correct one)."""

    list_display = ("created_at", "user", "amount_usd", "note", "granted_by")
    search_fields = ("user__username", "user__email", "note")
    list_select_related = ("user", "granted_by")
    autocomplete_fields = ("user",)
    fields = ("user", "amount_usd", "note")

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        grant = services.do_grant_credit(
            user=obj.user, amount_usd=obj.amount_usd, note=obj.note, granted_by=request.user
        )
        obj.pk = grant.pk
        messages.info(request, f"{obj.user} now has ${obj.user.credit_account.balance:.2f} of credit.")
