"""A key's policy tools in the management API: dry-run of an edited policy against the key's recorded tool calls,
its saved versions, the diff between two, and revert. Mixed into ``KeyViewSet``: the key is looked up as every
key route does (another user's key is a 404)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apikeys import services, versions
from apikeys.dryrun import DEFAULT_LIMIT, MAX_LIMIT, do_dry_run, result_json
from apikeys.models import Architecture, KeyVersion
from apikeys.validation import DocumentsInvalid

from .common import REVOKED, Conflict, Pagination, documents_invalid, positive_int


class DryRunRequestSerializer(serializers.Serializer):
    policy = serializers.JSONField(
        help_text="The edited X-Policy document (a JSON object; JSON text is accepted "
        "too), validated as a save would validate it."
    )
    limit = serializers.IntegerField(
        min_value=1,
        max_value=MAX_LIMIT,
        default=DEFAULT_LIMIT,
        help_text="How many of the key's last recorded tool calls to replay.",
    )


class RuleSerializer(serializers.Serializer):
    policy = serializers.CharField(allow_null=True)
    rule = serializers.CharField(allow_null=True)
    enforcement = serializers.CharField(allow_null=True)
    description = serializers.CharField(allow_null=True)


class DryRunChangeSerializer(serializers.Serializer):
    change = serializers.ChoiceField(choices=["newly_denied", "newly_allowed"])
    session_id = serializers.CharField()
    seq = serializers.IntegerField()
    at = serializers.DateTimeField(allow_null=True)
    tool = serializers.CharField()
    arch = serializers.ChoiceField(choices=Architecture.choices)
    verdict_recorded = serializers.CharField()
    blocked_by_guardrail = serializers.BooleanField()
    rule_recorded = RuleSerializer(allow_null=True)
    policy_version_recorded = serializers.IntegerField(
        allow_null=True, help_text="The key version that decided."
    )
    verdict = serializers.CharField(help_text="The edited policy's verdict.")
    rule = RuleSerializer(allow_null=True, help_text="The edited policy's rule that decides the call.")
    inspector_url = serializers.CharField(help_text="The call's step in the dashboard's session inspector.")


class DryRunResponseSerializer(serializers.Serializer):
    summary = serializers.CharField()
    recorded = serializers.IntegerField(help_text="Recorded tool calls looked at.")
    replayed = serializers.IntegerField()
    not_replayable = serializers.IntegerField(
        help_text="Recorded without arguments (content logging 'none')."
    )
    without_session_meta = serializers.IntegerField(
        help_text="Recorded before session metadata was logged; replayed with empty session metadata."
    )
    out_of_time = serializers.IntegerField(
        help_text="Not replayed: the time limit (POLICY_DRY_RUN_SECONDS) ran out; the newest calls go first."
    )
    newly_denied = DryRunChangeSerializer(many=True)
    newly_allowed = DryRunChangeSerializer(many=True)


class VersionSerializer(serializers.ModelSerializer):
    saved_by = serializers.CharField(
        source="saved_by.username", read_only=True, allow_null=True, default=None
    )
    current = serializers.SerializerMethodField()
    features = serializers.JSONField(read_only=True)
    policy = serializers.JSONField(read_only=True)
    config = serializers.JSONField(read_only=True)

    class Meta:
        model = KeyVersion
        fields = (
            "number",
            "current",
            "arch",
            "features",
            "policy",
            "config",
            "saved_by",
            "saved_at",
            "source",
            "reverted_from",
        )
        read_only_fields = fields

    def get_current(self, version: KeyVersion) -> bool:
        return version.pk == version.api_key.current_version_id


class DiffLineSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["add", "remove", "context", "hunk"])
    text = serializers.CharField()


class VersionDiffSerializer(serializers.Serializer):
    old = serializers.IntegerField(help_text="The older version's number.")
    new = serializers.IntegerField()
    diff = serializers.CharField(
        help_text="Unified diff: the policy code as written, then each document as JSON."
    )
    lines = DiffLineSerializer(many=True)


VERSION_NUMBER = OpenApiParameter("number", int, OpenApiParameter.PATH, description="The version's number.")
AGAINST = OpenApiParameter(
    "against",
    int,
    OpenApiParameter.QUERY,
    required=False,
    description="The version to compare with (default: the one before).",
)


class KeyVersionActions:
    """Actions of ``KeyViewSet`` under ``/api/v1/keys/{id}/``."""

    def _version(self, key, number) -> KeyVersion:
        version = versions.version_of(key, positive_int(number))
        if version is None:
            raise NotFound("No such version.")
        return version

    @extend_schema(
        summary="Dry-run an edited policy",
        request=DryRunRequestSerializer,
        responses={200: DryRunResponseSerializer},
        description="Replays the key's last `limit` recorded tool calls (both architectures, with the "
        "arguments and metadata as recorded) against `policy` and lists the calls it would "
        "decide differently, each with the deciding rule. Nothing is saved. Calls recorded "
        "without arguments (content logging 'none') are counted, not replayed.",
    )
    @action(detail=True, methods=["post"], url_path="dry-run")
    def dry_run(self, request, pk=None):
        key = self.get_object()
        ser = DryRunRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            result = do_dry_run(
                key=key, policy=ser.validated_data["policy"], limit=ser.validated_data["limit"]
            )
        except DocumentsInvalid as exc:
            raise documents_invalid(exc) from None
        return Response(result_json(result))

    @extend_schema(
        summary="List a key's versions",
        responses={200: VersionSerializer(many=True)},
        description="Every saved configuration, newest first, with who saved it, when and how "
        "(created, dashboard, api, revert).",
    )
    @action(detail=True, methods=["get"], url_path="versions")
    def versions(self, request, pk=None):
        key = self.get_object()
        paginator = Pagination()
        page = paginator.paginate_queryset(
            versions.versions_of(key).select_related("api_key"), request, view=self
        )
        return paginator.get_paginated_response(VersionSerializer(page, many=True).data)

    @extend_schema(
        summary="Retrieve a key version", parameters=[VERSION_NUMBER], responses={200: VersionSerializer}
    )
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>[0-9]+)")
    def version(self, request, pk=None, number=None):
        return Response(VersionSerializer(self._version(self.get_object(), number)).data)

    @extend_schema(
        summary="Diff two key versions",
        parameters=[VERSION_NUMBER, AGAINST],
        responses={200: VersionDiffSerializer},
    )
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>[0-9]+)/diff")
    def version_diff(self, request, pk=None, number=None):
        key = self.get_object()
        new = self._version(key, number)
        against = request.query_params.get("against")
        old = self._version(key, against) if against is not None else versions.version_of(key, new.number - 1)
        if old is None:
            raise NotFound("Version 1 has no predecessor: pass ?against=N.")
        lines = versions.diff_versions(old, new)
        return Response(
            {
                "old": old.number,
                "new": new.number,
                "diff": "\n".join(line.text for line in lines),
                "lines": [{"kind": line.kind, "text": line.text} for line in lines],
            }
        )

    @extend_schema(
        summary="Revert a key to a version",
        request=None,
        parameters=[VERSION_NUMBER],
        responses={201: VersionSerializer},
        extensions={"x-errors": ["409"]},
        description="Saves that version's configuration again, as a new version (history is kept).",
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]+)/revert")
    def revert(self, request, pk=None, number=None):
        key = self.get_object()
        old = self._version(key, number)
        if not key.is_active:
            raise Conflict(REVOKED)
        try:
            version = services.do_revert_to_version(key=key, number=old.number, saved_by=request.user)
        except DocumentsInvalid as exc:
            raise documents_invalid(exc) from None
        version = KeyVersion.objects.select_related("api_key", "saved_by").get(pk=version.pk)
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)
