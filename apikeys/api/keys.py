"""``/api/v1/keys/``: list, create, retrieve, PATCH, revoke and rotate relay keys.

Documents are validated exactly as the dashboard and the request headers validate them
(``apikeys.validation.validate_documents``, through ``apikeys.services``); an architecture change swaps
documents still equal to the old architecture's preset for the new one's, as the dashboard's configure form
does (``apikeys.forms.ConfigureKeyForm``). Staff see every user's keys; others only their own (another
user's key is a 404).
"""

from __future__ import annotations

import copy

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apikeys import services
from apikeys.forms import _strip_code
from apikeys.models import ApiKey, Architecture, ContentLogging, VersionSource
from apikeys.selectors import forget_cached_key
from apikeys.validation import DocumentsInvalid
from relay.config import PRESETS, preset_documents

from .common import REVOKED, ApiViewMixin, Conflict, FieldErrors, documents_invalid, positive_int
from .versions import KeyVersionActions

DOCUMENTS = ("features", "policy", "config")


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "description": "The document exactly as the X-Features / X-Policy / X-Config header carries "
        "it (a JSON object; JSON text is accepted too). Omitted or null: unchanged "
        "(on create: the architecture's preset).",
    }
)
class DocumentField(serializers.JSONField):
    pass


LIMIT_FIELDS = (
    "expires_at",
    "allowed_providers",
    "allowed_models",
    "rpm_limit",
    "tpm_limit",
    "budget_usd",
    "budget_period",
    "budget_soft_percent",
    "provider_key",
    "provider_key_provider",
    "remove_provider_key",
)


def limits_of(key: ApiKey) -> dict:
    """A key's governance (issue #16) as the API shows it: the stored provider key only as set or not."""
    from decimal import Decimal

    return {
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "allowed_providers": list(key.allowed_providers or []),
        "allowed_models": list(key.allowed_models or []),
        "rpm_limit": key.rpm_limit,
        "tpm_limit": key.tpm_limit,
        "budget_usd": None
        if key.budget_nano is None
        else str((Decimal(key.budget_nano) / 10**9).normalize()),
        "budget_period": key.budget_period,
        "budget_soft_percent": key.budget_soft_percent,
        "provider_key_set": bool(key.encrypted_provider_key),
        "provider_key_provider": key.provider_key_provider,
    }


def save_limits(key: ApiKey, changes: dict) -> None:
    """PATCH ``limits``: the fields given change, validated by the dashboard's own form
    (``forms.KeyLimitsForm``); errors name ``limits.<field>``."""
    from apikeys.forms import KeyLimitsForm
    from apikeys.views import _save_limits

    if not isinstance(changes, dict):
        raise FieldErrors([{"field": "limits", "message": "limits must be a JSON object."}])
    unknown = sorted(set(changes) - set(LIMIT_FIELDS))
    if unknown:
        raise FieldErrors(
            [
                {"field": f"limits.{name}", "message": f"unknown field; known: {', '.join(LIMIT_FIELDS)}"}
                for name in unknown
            ]
        )
    current = limits_of(key)
    merged = {name: current.get(name) for name in LIMIT_FIELDS if name in current}
    merged.update(changes)
    data = {"limits-present": "1"}
    for name, value in merged.items():
        if value is None or value is False:
            continue
        if name == "allowed_models" and isinstance(value, list):
            value = "\n".join(str(v) for v in value)
        if name == "remove_provider_key":
            value = "on"
        data[f"limits-{name}"] = value if isinstance(value, list) else str(value)
    form = KeyLimitsForm(data, key=key)
    if not form.is_valid():
        raise FieldErrors(
            [
                {"field": f"limits.{name}", "message": " ".join(str(m) for m in messages)}
                for name, messages in form.errors.items()
            ]
        )
    _save_limits(key, form.values())


class KeySerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="user.username", read_only=True)
    limits = serializers.SerializerMethodField(
        help_text="Governance: expiry, allowed providers and models, rate limits, budget (USD) and whether a "
        "provider key is stored (never shown)."
    )
    is_active = serializers.BooleanField(read_only=True)
    features = DocumentField(read_only=True)
    policy = DocumentField(read_only=True)
    config = DocumentField(read_only=True)

    class Meta:
        model = ApiKey
        fields = (
            "id",
            "name",
            "prefix",
            "arch",
            "content_logging",
            "features",
            "policy",
            "config",
            "is_active",
            "owner",
            "created_at",
            "updated_at",
            "last_used_at",
            "revoked_at",
            "limits",
        )
        read_only_fields = fields

    @extend_schema_field({"type": "object", "additionalProperties": True})
    def get_limits(self, key: ApiKey) -> dict:
        return limits_of(key)


class KeyWithSecretSerializer(KeySerializer):
    secret = serializers.CharField(read_only=True, help_text="The relay secret: shown in this response only.")

    class Meta(KeySerializer.Meta):
        fields = (*KeySerializer.Meta.fields, "secret")
        read_only_fields = fields


class KeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    arch = serializers.ChoiceField(choices=Architecture.choices, help_text="The architecture preset.")
    features = DocumentField(required=False, allow_null=True)
    policy = DocumentField(required=False, allow_null=True)
    config = DocumentField(required=False, allow_null=True)
    content_logging = serializers.ChoiceField(choices=ContentLogging.choices, required=False)


class KeyUpdateSerializer(serializers.Serializer):
    limits = serializers.JSONField(
        required=False,
        help_text=f"Governance fields to change: {', '.join(LIMIT_FIELDS)} (budget_usd in USD; "
        "provider_key is write-only; null clears a limit).",
    )
    name = serializers.CharField(max_length=100, required=False)
    arch = serializers.ChoiceField(choices=Architecture.choices, required=False)
    features = DocumentField(required=False, allow_null=True)
    policy = DocumentField(required=False, allow_null=True)
    config = DocumentField(required=False, allow_null=True)
    content_logging = serializers.ChoiceField(choices=ContentLogging.choices, required=False)


def _switched_documents(key: ApiKey, data: dict) -> tuple[str, dict]:
    """The architecture and documents a PATCH leads to (the configure form's rules, see the module docstring)."""
    stored = copy.deepcopy(key.documents)
    docs = {kind: data[kind] if data.get(kind) is not None else stored[kind] for kind in DOCUMENTS}
    stored_arch = stored["features"].get("agent_arch") or key.arch
    arch = data.get("arch")
    if arch is None:
        declared = docs["features"].get("agent_arch") if isinstance(docs["features"], dict) else None
        arch = declared if data.get("features") is not None and declared in PRESETS else key.arch
    if arch != stored_arch and stored_arch in PRESETS and arch in PRESETS:
        old, new = preset_documents(stored_arch), preset_documents(arch)
        if data.get("config") is None and docs["config"] == old["config"]:
            docs["config"] = new["config"]
        if (
            data.get("policy") is None
            and isinstance(docs["policy"], dict)
            and _strip_code(docs["policy"]) == _strip_code(old["policy"])
        ):
            code = (docs["policy"].get("codes") or {}).get("code", "")
            docs["policy"] = new["policy"]
            docs["policy"]["codes"]["code"] = code
        if data.get("features") is None:
            docs["features"] = {**docs["features"], "agent_arch": arch}
    return arch, docs


def rotate_secret(key: ApiKey) -> tuple[ApiKey, str]:
    """Give a key a new secret; the old one stops working (within the relay's key cache delay). The key keeps
    its id, configuration, sessions and usage."""
    old_prefix = key.prefix
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=key.pk)
        if locked.revoked_at is not None:
            raise Conflict("This key is revoked; it cannot be rotated.")
        for _ in range(5):
            secret = services.generate_secret()
            prefix = secret[: services.PREFIX_LENGTH]
            if not ApiKey.objects.filter(prefix=prefix).exists():
                break
        locked.prefix, locked.secret_hash = prefix, services.hash_secret(secret)
        locked.save(update_fields=["prefix", "secret_hash", "updated_at"])
    forget_cached_key(old_prefix)
    return locked, secret


@extend_schema_view(
    list=extend_schema(summary="List keys", description="Your keys, newest first (staff: every user's)."),
    retrieve=extend_schema(summary="Retrieve a key"),
)
class KeyViewSet(
    ApiViewMixin, KeyVersionActions, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = KeySerializer
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        qs = ApiKey.objects.select_related("user").order_by("-created_at", "-pk")
        return qs if self.request.user.is_staff else qs.filter(user=self.request.user)

    def get_object(self) -> ApiKey:
        from rest_framework.exceptions import NotFound

        pk = positive_int(self.kwargs.get("pk"))
        key = self.get_queryset().filter(pk=pk).first() if pk else None
        if key is None:
            raise NotFound("No such key.")
        return key

    @extend_schema(
        summary="Create a key",
        request=KeyCreateSerializer,
        responses={201: KeyWithSecretSerializer},
        description="Creates a relay key; the response is the only time its secret is shown. "
        "Documents left out take the architecture's preset.",
    )
    def create(self, request):
        ser = KeyCreateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        try:
            key, secret = services.do_create_api_key(
                user=request.user,
                name=data["name"],
                arch=data["arch"],
                features=data.get("features"),
                policy=data.get("policy"),
                config=data.get("config"),
                content_logging=data.get("content_logging") or ContentLogging.METADATA,
            )
        except DocumentsInvalid as exc:
            raise documents_invalid(exc) from None
        key.secret = secret
        return Response(KeyWithSecretSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a key",
        request=KeyUpdateSerializer,
        responses={200: KeySerializer},
        extensions={"x-errors": ["409"]},
        description="Name, architecture, session-log level and documents. Validated as the dashboard "
        "and the headers are: a policy that does not compile is a 400 with its line and "
        "column. Changing `arch` alone switches documents still equal to the old preset.",
    )
    def partial_update(self, request, pk=None):
        key = self.get_object()
        ser = KeyUpdateSerializer(data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        if not key.is_active:
            raise Conflict(REVOKED)
        data = ser.validated_data
        arch, docs = _switched_documents(key, data)
        try:
            with transaction.atomic():  # limits and documents change together or not at all
                if "limits" in data:
                    save_limits(key, data["limits"])
                if set(data) - {"limits"}:
                    services.do_update_api_key_config(
                        key=key,
                        arch=arch,
                        name=data.get("name"),
                        content_logging=data.get("content_logging"),
                        saved_by=request.user,
                        source=VersionSource.API,
                        **docs,
                    )
        except DocumentsInvalid as exc:
            raise documents_invalid(exc) from None
        key.refresh_from_db()
        return Response(KeySerializer(key).data)

    @extend_schema(
        summary="Revoke a key",
        request=None,
        responses={200: KeySerializer},
        description="The relay refuses the key within RELAY_KEY_CACHE_SECONDS (1 s by default). "
        "Revoking a revoked key changes nothing.",
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        key = self.get_object()
        services.do_revoke_api_key(key=key)
        key.refresh_from_db()
        return Response(KeySerializer(key).data)

    @extend_schema(
        summary="Rotate a key's secret",
        request=None,
        responses={200: KeyWithSecretSerializer},
        extensions={"x-errors": ["409"]},
        description="A new secret, shown in this response only; the old secret is refused from then on "
        "(within the relay's key cache delay). The key keeps its id and configuration.",
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        key, secret = rotate_secret(self.get_object())
        key = ApiKey.objects.select_related("user").get(pk=key.pk)
        key.secret = secret
        return Response(KeyWithSecretSerializer(key).data)
