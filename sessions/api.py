"""Management API (``/api/v1/``) of the session/usage log: sessions with their steps, and usage reports.

Thin, like the dashboard pages: reads are ``sessions.selectors`` (the same filters, scope and inspector data
as the dashboard; usage from the hourly/daily rollups). Staff see every key's data, others their own keys';
anything else is a 404. The shared pieces (token authentication, errors, throttles) are ``apikeys.api.common``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from apikeys.api.common import ApiViewMixin, FieldErrors, positive_int
from apikeys.models import ApiKey, Architecture

from . import selectors
from .forms import SessionFilterForm
from .histogram import LATENCY_FIELDS
from .models import DISPLAY_LABELS, Granularity, RelaySession, nano_to_usd
from .services import floor_day, floor_hour

# --- serializers ------------------------------------------------------------------------------------------------


class KeyRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()


class SessionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    key = KeyRefSerializer(source="api_key")
    owner = serializers.CharField(source="api_key.user.username")
    arch = serializers.CharField()
    endpoint_type = serializers.CharField()
    api = serializers.CharField()
    provider = serializers.CharField()
    status = serializers.ChoiceField(
        source="display_status",
        choices=list(DISPLAY_LABELS.items()),
        help_text="As the dashboard shows it: an open session quiet for "
        "SESSION_IDLE_DISPLAY_SECONDS is idle.",
    )
    status_reason = serializers.CharField()
    turns = serializers.IntegerField()
    closed = serializers.BooleanField()
    models = serializers.ListField(source="model_names", child=serializers.CharField())
    requests = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost_usd = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    last_activity = serializers.DateTimeField()

    def get_cost_usd(self, obj) -> str:
        return str(nano_to_usd(obj.cost_nano))


class StepSerializer(serializers.Serializer):
    turn = serializers.IntegerField()
    seq = serializers.IntegerField()
    type = serializers.CharField(help_text="message, program, tool_call, tool_result, llm_call, final, ...")
    created_at = serializers.DateTimeField()
    data = serializers.JSONField(help_text="The step as logged (what the session inspector shows).")
    verdict = serializers.CharField(allow_null=True, help_text="tool_call: the policy's verdict.")
    denied = serializers.BooleanField(allow_null=True, help_text="tool_call: whether it was denied.")
    result = serializers.JSONField(allow_null=True, help_text="tool_call: its tool_result step's data.")


class FinalErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    headline = serializers.CharField()
    detail = serializers.CharField()


class FinalSerializer(serializers.Serializer):
    value = serializers.JSONField(allow_null=True)
    meta = serializers.JSONField(allow_null=True)
    error = FinalErrorSerializer(allow_null=True)


class SessionRequestSerializer(serializers.Serializer):
    created_at = serializers.DateTimeField()
    endpoint_type = serializers.CharField()
    api = serializers.CharField()
    provider = serializers.CharField()
    model = serializers.CharField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    latency_ms = serializers.FloatField()
    status_code = serializers.IntegerField()
    error_kind = serializers.CharField()
    streamed = serializers.BooleanField()
    cost_usd = serializers.SerializerMethodField()

    def get_cost_usd(self, obj) -> str:
        return str(nano_to_usd(obj.cost_nano))


class SummarySerializer(serializers.Serializer):
    steps = serializers.IntegerField()
    truncated = serializers.BooleanField(
        help_text=f"More than {selectors.MAX_STEPS} steps: the rest is left out."
    )
    tool_calls = serializers.IntegerField()
    denied_calls = serializers.IntegerField()
    llm_calls = serializers.IntegerField()
    llm_tokens = serializers.IntegerField()


class SessionDetailSerializer(SessionSerializer):
    summary = SummarySerializer()
    final = FinalSerializer(allow_null=True)
    steps = StepSerializer(many=True)
    requests_log = SessionRequestSerializer(
        many=True, help_text="The session's relay requests (at most 500)."
    )


def session_detail(session: RelaySession) -> dict:
    """The inspector's data (``selectors.session_timeline``) for the API."""
    t = selectors.session_timeline(session)
    steps = []
    for turn, items in t["turns"]:
        for item in items:
            call = item["type"] == "tool_call"
            steps.append(
                {
                    "turn": turn,
                    "seq": item["seq"],
                    "type": item["type"],
                    "created_at": item["at"],
                    "data": item["data"],
                    "verdict": (item.get("verdict") or "") if call else None,
                    "denied": bool(item.get("denied")) if call else None,
                    "result": item.get("result") if call else None,
                }
            )
    final = t["final"]
    return {
        "summary": {
            "steps": t["steps"],
            "truncated": t["truncated"],
            "tool_calls": t["tool_calls"],
            "denied_calls": t["denied_calls"],
            "llm_calls": len(t["llm_calls"]),
            "llm_tokens": t["llm_tokens"],
        },
        "final": None
        if final is None
        else {"value": final.get("value"), "meta": final.get("meta"), "error": final.get("error")},
        "steps": steps,
        "requests_log": t["requests"],
    }


# --- sessions ----------------------------------------------------------------------------------------------------

_SESSION_FILTERS = [
    OpenApiParameter("key", OpenApiTypes.INT, description="Only this key's sessions."),
    OpenApiParameter("arch", OpenApiTypes.STR, enum=list(Architecture.values)),
    OpenApiParameter("status", OpenApiTypes.STR, enum=list(DISPLAY_LABELS)),
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="Created on or after this day (UTC)."),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Created on or before this day (UTC)."),
]


def visible_key_or_404(user, raw) -> int | None:
    """The key id of a ``key`` query parameter: None when absent, 400 when malformed, 404 when not visible."""
    if raw in (None, ""):
        return None
    pk = positive_int(raw)
    if pk is None:
        raise FieldErrors([{"field": "key", "message": "A key id (a positive integer) is required."}])
    if selectors.get_visible_key(user, pk) is None:
        raise NotFound("No such key.")
    return pk


@extend_schema_view(
    list=extend_schema(
        summary="List sessions",
        parameters=_SESSION_FILTERS,
        description="Newest first, with the dashboard's filters.",
    ),
    retrieve=extend_schema(
        summary="Retrieve a session with its steps",
        responses={200: SessionDetailSerializer},
        parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        description="The session inspector's data: every step (tool calls with their verdict "
        "and result), the final value or error, and the session's requests.",
    ),
)
class SessionViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = SessionSerializer
    lookup_value_regex = r"[^/]+"

    def get_queryset(self):
        user = self.request.user
        params = self.request.query_params
        visible_key_or_404(user, params.get("key"))
        form = SessionFilterForm(params, user=user)
        if not form.is_valid():
            raise FieldErrors(
                [
                    {"field": field, "message": message}
                    for field, messages in form.errors.items()
                    for message in messages
                ]
            )
        qs = selectors.sessions(selectors.scope_for(user), form.filters())
        return qs.select_related("api_key", "api_key__user")

    def retrieve(self, request, pk=None):
        try:
            session_id = uuid.UUID(str(pk))
        except ValueError:
            session_id = None
        session = selectors.get_session(request.user, session_id) if session_id else None
        if session is None:
            raise NotFound("No such session.")
        data = SessionSerializer(session).data
        detail = session_detail(session)
        data.update(_detail_data(detail))
        return Response(data)


def _detail_data(detail: dict) -> dict:
    return {
        "summary": SummarySerializer(detail["summary"]).data,
        "final": FinalSerializer(detail["final"]).data if detail["final"] is not None else None,
        "steps": StepSerializer(detail["steps"], many=True).data,
        "requests_log": SessionRequestSerializer(detail["requests_log"], many=True).data,
    }


# --- usage -------------------------------------------------------------------------------------------------------

GROUPS = ("day", "hour", "key", "model")
MAX_HOURS = 31 * 24
MAX_DAYS = 1000


class UsageQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=[(g, g) for g in GROUPS], default="day")
    start = serializers.DateTimeField(required=False, help_text="Default: 7 days before `end`.")
    end = serializers.DateTimeField(required=False, help_text="Default: now.")
    key = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Only this key (its id)."
    )
    model = serializers.CharField(required=False, max_length=200, help_text="Only this model.")

    def validate_start(self, value):
        return _sane(value)

    def validate_end(self, value):
        return _sane(value)


def _sane(value: datetime) -> datetime:
    if not 1970 <= value.year <= 9000:
        raise serializers.ValidationError("must be between the years 1970 and 9000")
    return value.astimezone(UTC)


class StatsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost_usd = serializers.CharField(help_text="US dollars (a decimal string).")
    latency_avg_ms = serializers.FloatField(allow_null=True)
    latency_median_ms = serializers.FloatField(
        allow_null=True, help_text="Estimated from the rollups' histograms."
    )
    latency_p95_ms = serializers.FloatField(allow_null=True)


class UsageRowSerializer(StatsSerializer):
    bucket = serializers.DateTimeField(
        allow_null=True, help_text="group_by day/hour: the bucket's start (UTC)."
    )
    key = KeyRefSerializer(allow_null=True, help_text="group_by key: the key.")
    model = serializers.CharField(allow_null=True, help_text="group_by model: the model ('' when none).")


class UsageSerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=[(g, g) for g in GROUPS])
    granularity = serializers.ChoiceField(
        choices=[("hour", "hour"), ("day", "day")], help_text="The rollups read (hourly or daily)."
    )
    start = serializers.DateTimeField(help_text="The range actually covered: aligned to the granularity.")
    end = serializers.DateTimeField()
    totals = StatsSerializer()
    results = UsageRowSerializer(many=True)


def _stats(s: selectors.Stats) -> dict:
    def r(v):
        return None if v is None else round(v, 1)

    return {
        "requests": s.requests,
        "errors": s.errors,
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": s.completion_tokens,
        "total_tokens": s.tokens,
        "cost_usd": str(s.cost_usd),
        "latency_avg_ms": r(s.avg_latency),
        "latency_median_ms": r(s.p50),
        "latency_p95_ms": r(s.p95),
    }


def _range(granularity: str, start: datetime, end: datetime) -> selectors.Range:
    step = timedelta(hours=1) if granularity == Granularity.HOUR else timedelta(days=1)
    floor = floor_hour if granularity == Granularity.HOUR else floor_day
    first, last = floor(start), floor(end)
    if last < end:
        last += step
    buckets, b = [], first
    while b < last:
        buckets.append(b)
        b += step
    return selectors.Range("api", granularity, tuple(buckets or [first]))


class UsageView(ApiViewMixin, APIView):
    @extend_schema(
        summary="Usage totals",
        parameters=[UsageQuerySerializer],
        responses={200: UsageSerializer},
        description="Requests, tokens, errors, cost and latency (average, median, p95) over a time range, grouped "
        "by day, hour, key or model; read from the hourly/daily rollups. Day and hour groups list every "
        "bucket of the range (zeros included; hour: at most 31 days); key and model groups read hourly "
        "rollups for ranges of up to 31 days still within LOG_RETENTION_DAYS, daily ones otherwise.",
    )
    def get(self, request):
        q = UsageQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        data = q.validated_data
        key_id = visible_key_or_404(request.user, data.get("key"))
        end = data.get("end") or timezone.now()
        start = data.get("start") or end - timedelta(days=7)
        if start >= end:
            raise FieldErrors([{"field": "start", "message": "must be before end"}])
        group_by, span = data["group_by"], end - start
        if span > timedelta(days=MAX_DAYS):
            raise FieldErrors([{"field": "start", "message": f"the range may cover at most {MAX_DAYS} days"}])
        hourly_kept = timezone.now() - timedelta(days=max(settings.LOG_RETENTION_DAYS, 8))
        if group_by == "hour":
            if span > timedelta(hours=MAX_HOURS):
                raise FieldErrors([{"field": "start", "message": "group_by=hour covers at most 31 days"}])
            granularity = Granularity.HOUR
        elif group_by == "day":
            granularity = Granularity.DAY
        else:
            granularity = (
                Granularity.HOUR
                if span <= timedelta(hours=MAX_HOURS) and start >= hourly_kept
                else Granularity.DAY
            )
        rng = _range(granularity, start, end)
        scope = selectors.scope_for(request.user).narrowed(key_id)
        model = data.get("model")
        totals = selectors.Stats(hist=[0] * len(LATENCY_FIELDS))
        rows = []
        if group_by in ("day", "hour"):
            for bucket, s in selectors.usage_series(scope, rng, model):
                totals.add(s)
                rows.append({"bucket": bucket, "key": None, "model": None, **_stats(s)})
        else:
            dimension = "api_key_id" if group_by == "key" else "model"
            groups = selectors.usage_by(scope, rng, dimension, model)
            keys = (
                {k.pk: k for k in ApiKey.objects.filter(pk__in=[g for g, _ in groups])}
                if group_by == "key"
                else {}
            )
            for group, s in groups:
                totals.add(s)
                key = keys.get(group)
                rows.append(
                    {
                        "bucket": None,
                        "model": group if group_by == "model" else None,
                        "key": {"id": key.pk, "name": key.name, "prefix": key.prefix} if key else None,
                        **_stats(s),
                    }
                )
        body = {
            "group_by": group_by,
            "granularity": "hour" if granularity == Granularity.HOUR else "day",
            "start": rng.start,
            "end": rng.end,
            "totals": _stats(totals),
            "results": rows,
        }
        return Response(UsageSerializer(body).data)
