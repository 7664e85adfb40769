"""Reads of the session/usage log for the dashboard. Users see their own keys' data; staff see all.

The overview, key and credits pages read ``UsageRollup`` (hourly rows for 24 h / 7 d, daily for 30 d), so
their cost does not grow with the number of raw events; medians and p95s come from the summed latency
histograms (``sessions.histogram``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from apikeys.models import ApiKey

from . import credits, previews
from .histogram import LATENCY_FIELDS, quantile
from .models import (
    IDLE,
    CreditAccount,
    CreditGrant,
    Granularity,
    RelaySession,
    SessionEvent,
    SessionStatus,
    UsageEvent,
    UsageRollup,
    idle_cutoff,
    nano_to_usd,
)
from .services import floor_day, floor_hour

# --- scope -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which keys a viewer sees: ``key_ids`` None means every key (staff)."""

    user_id: int
    is_staff: bool
    key_ids: tuple[int, ...] | None

    def filter(self, qs: QuerySet, field: str = "api_key_id") -> QuerySet:
        return qs if self.key_ids is None else qs.filter(**{f"{field}__in": self.key_ids})

    def narrowed(self, key_id: int | None) -> Scope:
        return self if key_id is None else Scope(self.user_id, self.is_staff, (key_id,))


def scope_for(user) -> Scope:
    if user.is_staff:
        return Scope(user.pk, True, None)
    return Scope(user.pk, False, tuple(ApiKey.objects.filter(user=user).values_list("pk", flat=True)))


def visible_keys(user) -> QuerySet[ApiKey]:
    qs = ApiKey.objects.all() if user.is_staff else ApiKey.objects.filter(user=user)
    return qs.select_related("user").order_by("-created_at") if user.is_staff else qs.order_by("-created_at")


def get_visible_key(user, pk: int) -> ApiKey | None:
    return visible_keys(user).filter(pk=pk).first()


# --- ranges ------------------------------------------------------------------------------------------------------

RANGES = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
DEFAULT_RANGE = "7d"


@dataclass(frozen=True)
class Range:
    code: str
    granularity: str
    buckets: tuple[datetime, ...]

    @property
    def start(self) -> datetime:
        return self.buckets[0]

    @property
    def end(self) -> datetime:
        step = timedelta(hours=1) if self.granularity == Granularity.HOUR else timedelta(days=1)
        return self.buckets[-1] + step

    @property
    def label(self) -> str:
        return RANGES[self.code]

    def bucket_label(self, b: datetime) -> str:
        if self.code == "24h":
            return b.strftime("%H:%M")
        if self.code == "7d":
            return b.strftime("%a %H:%M")
        return b.strftime("%b %-d")


def resolve_range(code: str | None, now: datetime | None = None) -> Range:
    code = code if code in RANGES else DEFAULT_RANGE
    now = now or timezone.now()
    if code == "30d":
        last = floor_day(now)
        return Range(code, Granularity.DAY, tuple(last - timedelta(days=i) for i in range(29, -1, -1)))
    hours = 24 if code == "24h" else 168
    last = floor_hour(now)
    return Range(code, Granularity.HOUR, tuple(last - timedelta(hours=i) for i in range(hours - 1, -1, -1)))


# --- usage aggregates ----------------------------------------------------------------------------------------------

_SUMS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "latency_sum_ms",
    "cost_nano",
    *LATENCY_FIELDS,
)


def _annotations() -> dict:
    return {f"s_{name}": Sum(name) for name in _SUMS}


@dataclass
class Stats:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_sum_ms: float = 0.0
    cost_nano: int = 0
    hist: list[int] | None = None

    @classmethod
    def from_row(cls, row: dict) -> Stats:
        return cls(
            requests=int(row.get("s_requests") or 0),
            errors=int(row.get("s_errors") or 0),
            prompt_tokens=int(row.get("s_prompt_tokens") or 0),
            completion_tokens=int(row.get("s_completion_tokens") or 0),
            latency_sum_ms=float(row.get("s_latency_sum_ms") or 0),
            cost_nano=int(row.get("s_cost_nano") or 0),
            hist=[int(row.get(f"s_{f}") or 0) for f in LATENCY_FIELDS],
        )

    def add(self, other: Stats) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.latency_sum_ms += other.latency_sum_ms
        self.cost_nano += other.cost_nano
        mine = self.hist or [0] * len(LATENCY_FIELDS)
        self.hist = [a + b for a, b in zip(mine, other.hist or [0] * len(LATENCY_FIELDS), strict=True)]

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def p50(self) -> float | None:
        return quantile(self.hist or [], 0.5)

    @property
    def p95(self) -> float | None:
        return quantile(self.hist or [], 0.95)

    @property
    def avg_latency(self) -> float | None:
        return self.latency_sum_ms / self.requests if self.requests else None

    @property
    def cost_usd(self):
        return nano_to_usd(self.cost_nano)


def _rollups(scope: Scope, rng: Range, model: str | None = None) -> QuerySet:
    qs = UsageRollup.objects.filter(granularity=rng.granularity, bucket__gte=rng.start, bucket__lt=rng.end)
    qs = scope.filter(qs)
    return qs.filter(model=model) if model is not None else qs


def usage_series(scope: Scope, rng: Range, model: str | None = None) -> list[tuple[datetime, Stats]]:
    """One ``Stats`` per bucket of the range (zeros where nothing happened)."""
    rows = _rollups(scope, rng, model).values("bucket").annotate(**_annotations()).order_by()
    found = {row["bucket"].astimezone(UTC): Stats.from_row(row) for row in rows}
    return [(b, found.get(b) or Stats(hist=[0] * len(LATENCY_FIELDS))) for b in rng.buckets]


def usage_by(
    scope: Scope, rng: Range, dimension: str, model: str | None = None
) -> list[tuple[object, Stats]]:
    """``[(key id or model name, Stats)]`` over the range, most requests first."""
    rows = _rollups(scope, rng, model).values(dimension).annotate(**_annotations()).order_by()
    out = [(row[dimension], Stats.from_row(row)) for row in rows]
    return sorted(out, key=lambda item: (-item[1].requests, str(item[0])))


def models_in_range(scope: Scope, rng: Range) -> list[str]:
    qs = scope.filter(
        UsageRollup.objects.filter(granularity=Granularity.DAY, bucket__gte=floor_day(rng.start))
    )
    return sorted(m for m in qs.values_list("model", flat=True).distinct().order_by() if m)


def has_any_usage(scope: Scope) -> bool:
    return scope.filter(UsageRollup.objects.all()).exists()


def _keys_by_id(ids: Iterable[int]) -> dict[int, ApiKey]:
    return {
        k.pk: k
        for k in ApiKey.objects.filter(pk__in=list(ids))
        .select_related("user")
        .only("pk", "name", "prefix", "arch", "revoked_at", "user__username")
    }


def _fmt(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _top(items: list[tuple[object, Stats]], n: int) -> list[tuple[object, Stats]]:
    if len(items) <= n:
        return items
    rest = Stats(hist=[0] * len(LATENCY_FIELDS))
    for _, s in items[n - 1 :]:
        rest.add(s)
    return [*items[: n - 1], ("__other__", rest)]


def overview(scope: Scope, rng: Range, model: str | None = None) -> dict:
    """Everything the overview (and a key's page) shows: totals, series for the charts, breakdowns."""
    series = usage_series(scope, rng, model)
    totals = Stats(hist=[0] * len(LATENCY_FIELDS))
    for _, s in series:
        totals.add(s)
    by_key = usage_by(scope, rng, "api_key_id", model) if totals.requests else []
    by_model = usage_by(scope, rng, "model", model) if totals.requests else []
    keys = _keys_by_id(k for k, _ in by_key)
    sessions = scope.filter(RelaySession.objects.filter(created_at__gte=rng.start, created_at__lt=rng.end))
    status_counts = dict(sessions.values_list("status").annotate(n=Count("pk")).order_by())

    def key_label(pk) -> str:
        if pk == "__other__":
            return "Other keys"
        k = keys.get(pk)
        if k is None:
            return f"Key {pk}"
        return f"{k.name} ({k.user.username})" if scope.is_staff else k.name

    key_rows = [{"key": keys.get(pk), "label": key_label(pk), "stats": s} for pk, s in by_key]
    model_rows = [{"model": m or "(none)", "stats": s} for m, s in by_model]
    top_keys = _top(by_key, 8)
    top_models = _top(by_model, 8)
    chart = {
        "labels": [rng.bucket_label(b) for b, _ in series],
        "requests_ok": [s.requests - s.errors for _, s in series],
        "requests_err": [s.errors for _, s in series],
        "prompt_tokens": [s.prompt_tokens for _, s in series],
        "completion_tokens": [s.completion_tokens for _, s in series],
        "error_rate": [_fmt(s.error_rate * 100, 2) if s.requests else None for _, s in series],
        "p50": [_fmt(s.p50) for _, s in series],
        "p95": [_fmt(s.p95) for _, s in series],
        "by_key": {
            "labels": [key_label(pk) for pk, _ in top_keys],
            "requests": [s.requests for _, s in top_keys],
            "errors": [s.errors for _, s in top_keys],
        },
        "by_model": {
            "labels": [("Other models" if m == "__other__" else (m or "(none)")) for m, _ in top_models],
            "tokens": [s.tokens for _, s in top_models],
            "requests": [s.requests for _, s in top_models],
        },
    }
    return {
        "totals": totals,
        "series": series,
        "key_rows": key_rows[:25],
        "model_rows": model_rows[:25],
        "sessions_total": sum(status_counts.values()),
        "status_counts": {s: status_counts.get(s, 0) for s in SessionStatus.values},
        "chart": chart,
        "refused": refused_by_limits(scope, rng),
    }


REFUSAL_LABELS = {
    "limit_rpm": "requests/min",
    "limit_tpm": "tokens/min",
    "limit_budget": "budget",
    "limit_expired": "expired",
    "limit_model": "model",
    "limit_provider": "provider",
}


def refused_by_limits(scope: Scope, rng: Range) -> dict:
    """Requests a key's governance refused in the range (``apikeys.governance``: 429, 402, 401, 403), by kind."""
    qs = scope.filter(
        UsageEvent.objects.filter(
            created_at__gte=rng.start, created_at__lt=rng.end, error_kind__in=list(REFUSAL_LABELS)
        )
    )
    counts = dict(qs.values_list("error_kind").annotate(n=Count("pk")).order_by())
    return {
        "total": sum(counts.values()),
        "by_kind": [(REFUSAL_LABELS[k], counts[k]) for k in REFUSAL_LABELS if counts.get(k)],
    }


# --- sessions ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionFilters:
    key_id: int | None = None
    arch: str = ""
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    session_id: object | None = None  # exports of one session
    q: str = ""  # words of the first message or program (``sessions.previews.search``)

    def as_query(self) -> dict:
        out = {}
        if self.key_id:
            out["key"] = self.key_id
        for name in ("q", "arch", "status"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.date_from:
            out["date_from"] = self.date_from.isoformat()
        if self.date_to:
            out["date_to"] = self.date_to.isoformat()
        return out


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _dated(qs: QuerySet, f: SessionFilters, field: str = "created_at") -> QuerySet:
    if f.date_from:
        qs = qs.filter(**{f"{field}__gte": _day_start(f.date_from)})
    if f.date_to:
        qs = qs.filter(**{f"{field}__lt": _day_start(f.date_to) + timedelta(days=1)})
    return qs


def sessions(scope: Scope, f: SessionFilters, *, with_status: bool = True) -> QuerySet[RelaySession]:
    qs = scope.narrowed(f.key_id).filter(RelaySession.objects.all())
    if f.session_id:
        qs = qs.filter(pk=f.session_id)
    if f.arch:
        qs = qs.filter(arch=f.arch)
    if f.q:
        qs = previews.search(qs, f.q)
    if f.status and with_status:
        if f.status == IDLE:  # shown, not stored: open and quiet for a while
            qs = qs.filter(status=SessionStatus.OPEN, closed=False, last_activity__lt=idle_cutoff())
        elif f.status == SessionStatus.OPEN:
            qs = qs.filter(
                Q(status=SessionStatus.OPEN) & (Q(closed=True) | Q(last_activity__gte=idle_cutoff()))
            )
        else:
            qs = qs.filter(status=f.status)
    qs = _dated(qs, f)
    related = ("api_key", "api_key__user") if scope.is_staff else ("api_key",)
    return qs.select_related(*related).order_by("-created_at", "-pk")


def session_status_counts(scope: Scope, f: SessionFilters) -> dict[str, int]:
    """Counts per status under the other filters (for the status tabs)."""
    qs = sessions(scope, f, with_status=False).order_by()
    counts = dict(qs.values_list("status").annotate(n=Count("pk")).order_by())
    idle = (
        qs.filter(status=SessionStatus.OPEN, closed=False, last_activity__lt=idle_cutoff()).count()
        if counts.get(SessionStatus.OPEN)
        else 0
    )
    out = {"": sum(counts.values()), **{s: counts.get(s, 0) for s in SessionStatus.values}}
    out[SessionStatus.OPEN] -= idle
    out[IDLE] = idle
    return out


def get_session(user, session_id) -> RelaySession | None:
    """The session if the viewer may see it (its key is theirs, or they are staff)."""
    qs = RelaySession.objects.select_related("api_key", "api_key__user").filter(pk=session_id)
    if not user.is_staff:
        qs = qs.filter(api_key__user=user)
    return qs.first()


def recent_sessions(scope: Scope, limit: int = 10) -> list[RelaySession]:
    return list(sessions(scope, SessionFilters())[:limit])


VERDICT_DENIED = ("hard_denied", "soft_denied")
MAX_STEPS = 2000


def session_timeline(session: RelaySession) -> dict:
    """The inspector's view of a session: turns of steps, tool results attached to their calls, totals."""
    steps = list(SessionEvent.objects.filter(session=session).order_by("seq", "created_at")[: MAX_STEPS + 1])
    truncated = len(steps) > MAX_STEPS
    steps = steps[:MAX_STEPS]
    results = {s.data.get("call_id"): s for s in steps if s.type == "tool_result" and s.data.get("call_id")}
    calls = {s.data.get("call_id") for s in steps if s.type == "tool_call"}
    turns: dict[int, list[dict]] = {}
    llm_calls, tool_calls = [], []
    final = None
    for s in steps:
        d = s.data or {}
        item = {"type": s.type, "seq": s.seq, "at": s.created_at, "data": d}
        if s.type == "tool_result" and d.get("call_id") and d.get("call_id") in calls:
            continue  # shown inside its call
        if s.type == "program":
            item["lines"] = str(d.get("program") or "").splitlines() or [""]
        elif s.type == "tool_call":
            record = d.get("record") or {}
            verdict = d.get("verdict") or record.get("final_verdict") or ""
            item.update(
                verdict=verdict,
                denied=verdict in VERDICT_DENIED,
                record=record,
                args=_args(d.get("args") or record.get("args") or {}),
                result=(results.get(d.get("call_id")).data if d.get("call_id") in results else None),
            )
            item["deciding"] = record.get("denied") if item["denied"] else record.get("allowed")
            item["policy_version"] = d.get("policy_version")  # a KeyVersion id; its number is set below
            tool_calls.append(item)
        elif s.type == "llm_call":
            llm_calls.append(d)
        elif s.type == "final":
            final = item
            fv = d.get("final_return_value")
            item["value"], item["meta"] = (
                (fv.get("value"), fv.get("meta")) if isinstance(fv, dict) and "meta" in fv else (fv, None)
            )
            item["error"] = _error(d.get("error"))
        turns.setdefault(s.turn, []).append(item)
    _number_versions(tool_calls)
    requests = list(UsageEvent.objects.filter(session_id=session.pk).order_by("created_at")[:500])
    return {
        "turns": sorted(turns.items()),
        "truncated": truncated,
        "llm_calls": llm_calls,
        "llm_tokens": sum(
            int(c.get("prompt_tokens") or 0) + int(c.get("completion_tokens") or 0) for c in llm_calls
        ),
        "tool_calls": len(tool_calls),
        "denied_calls": sum(1 for c in tool_calls if c["denied"]),
        "final": final,
        "requests": requests,
        "steps": len(steps),
    }


def _number_versions(tool_calls: list[dict]) -> None:
    """Which saved key version decided each call: its number (one query for the session)."""
    from apikeys.models import KeyVersion

    ids = {c["policy_version"] for c in tool_calls if isinstance(c.get("policy_version"), int)}
    numbers = dict(KeyVersion.objects.filter(pk__in=ids).values_list("pk", "number")) if ids else {}
    for c in tool_calls:
        c["policy_version"] = numbers.get(c.get("policy_version"))


def _error(error) -> dict | None:
    """``{code, headline, detail}`` of a final error (a string, or ``{code, message}``)."""
    if not error:
        return None
    code, message = (
        ("", str(error))
        if not isinstance(error, dict)
        else (str(error.get("code") or ""), str(error.get("message") or error))
    )
    headline, sep, rest = message.partition(" Context:")
    return {"code": code, "headline": headline.strip(), "detail": ("Context:" + rest).strip() if sep else ""}


def _args(args: dict) -> list[dict]:
    out = []
    for name, spec in args.items():
        if isinstance(spec, dict) and spec.get("withheld") is True and "value" not in spec:
            out.append({"name": name, "value": None, "meta": {}, "withheld": True})
        elif isinstance(spec, dict) and "value" in spec:
            out.append({"name": name, "value": spec.get("value"), "meta": spec.get("meta") or {}})
        else:
            out.append({"name": name, "value": spec, "meta": {}})
    return out


# --- exports -------------------------------------------------------------------------------------------------------

SESSION_COLUMNS = (
    "id",
    "key_prefix",
    "key_name",
    "arch",
    "endpoint_type",
    "api",
    "provider",
    "status",
    "turns",
    "closed",
    "models",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "created_at",
    "last_activity",
)
USAGE_COLUMNS = (
    "event_id",
    "created_at",
    "key_prefix",
    "session_id",
    "endpoint_type",
    "api",
    "provider",
    "arch",
    "models",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "status_code",
    "error_kind",
    "streamed",
    "cost_usd",
)


def export_sessions(
    scope: Scope, f: SessionFilters, *, with_steps: bool = False, chunk: int = 500
) -> Iterator[dict]:
    qs = sessions(scope, f)
    batch: list[RelaySession] = []

    def flush(batch):
        steps: dict = {}
        if with_steps:
            for s in SessionEvent.objects.filter(session_id__in=[b.pk for b in batch]).order_by(
                "session_id", "seq"
            ):
                steps.setdefault(s.session_id, []).append(
                    {
                        "seq": s.seq,
                        "turn": s.turn,
                        "type": s.type,
                        "data": s.data,
                        "created_at": s.created_at.isoformat(),
                    }
                )
        for s in batch:
            row = {
                "id": str(s.pk),
                "key_prefix": s.api_key.prefix,
                "key_name": s.api_key.name,
                "arch": s.arch,
                "endpoint_type": s.endpoint_type,
                "api": s.api,
                "provider": s.provider,
                "status": s.status,
                "turns": s.turns,
                "closed": s.closed,
                "models": list(s.model_names or []),
                "requests": s.requests,
                "prompt_tokens": s.prompt_tokens,
                "completion_tokens": s.completion_tokens,
                "cost_usd": str(nano_to_usd(s.cost_nano)),
                "created_at": s.created_at.isoformat(),
                "last_activity": s.last_activity.isoformat(),
            }
            if with_steps:
                row["events"] = steps.get(s.pk, [])
            yield row

    for s in qs.iterator(chunk_size=chunk):
        batch.append(s)
        if len(batch) >= chunk:
            yield from flush(batch)
            batch = []
    if batch:
        yield from flush(batch)


def export_usage(scope: Scope, f: SessionFilters, chunk: int = 2000) -> Iterator[dict]:
    qs = _dated(scope.narrowed(f.key_id).filter(UsageEvent.objects.all()), f)
    if f.arch:
        qs = qs.filter(arch=f.arch)
    if f.session_id:
        qs = qs.filter(session_id=f.session_id)
    prefixes = dict(scope.narrowed(f.key_id).filter(ApiKey.objects.all(), "pk").values_list("pk", "prefix"))
    for e in qs.order_by("created_at", "pk").iterator(chunk_size=chunk):
        yield {
            "event_id": str(e.event_id),
            "created_at": e.created_at.isoformat(),
            "key_prefix": prefixes.get(e.api_key_id, ""),
            "session_id": str(e.session_id) if e.session_id else "",
            "endpoint_type": e.endpoint_type,
            "api": e.api,
            "provider": e.provider,
            "arch": e.arch,
            "models": [m for m in e.models_used.split(",") if m],
            "prompt_tokens": e.prompt_tokens,
            "completion_tokens": e.completion_tokens,
            "latency_ms": e.latency_ms,
            "status_code": e.status_code,
            "error_kind": e.error_kind,
            "streamed": e.streamed,
            "cost_usd": str(nano_to_usd(e.cost_nano)),
        }


# --- credits -------------------------------------------------------------------------------------------------------


def credit_overview(user, scope: Scope, days: int = 30) -> dict:
    now = timezone.now()
    rng = Range(
        "30d", Granularity.DAY, tuple(floor_day(now) - timedelta(days=i) for i in range(days - 1, -1, -1))
    )
    account = CreditAccount.objects.filter(pk=user.pk).first()
    series = usage_series(scope, rng)
    by_key = usage_by(scope, rng, "api_key_id")
    keys = _keys_by_id(k for k, _ in by_key)
    table = credits.price_table()
    own_keys = [k for k in ApiKey.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at")]
    key_prices = []
    for k in own_keys:
        total, rows = credits.key_price(k, table)
        key_prices.append({"key": k, "total": total, "rows": rows})
    spent_30d = sum(s.cost_nano for _, s in series)
    return {
        "account": account,
        "balance_nano": account.balance_nano if account else 0,
        "spent_nano": account.spent_nano if account else 0,
        "spent_30d_nano": spent_30d,
        "tokens_30d": sum(s.tokens for _, s in series),
        "days": [(b, s) for b, s in reversed(series) if s.requests],
        "key_costs": [
            {"key": keys.get(pk), "stats": s} for pk, s in sorted(by_key, key=lambda item: -item[1].cost_nano)
        ],
        "key_prices": key_prices,
        "prices": table,
        "grants": list(CreditGrant.objects.filter(user=user).order_by("-created_at")[:20]),
        "chart": {
            "labels": [rng.bucket_label(b) for b, _ in series],
            "cost": [float(nano_to_usd(s.cost_nano)) for _, s in series],
            "tokens": [s.tokens for _, s in series],
        },
    }


def price_rows(table: credits.PriceTable) -> list[dict]:
    order = {"base": 0, "arch": 1, "defence": 2}
    rows = [
        {"code": c, "label": table.labels.get(c, c), "kind": table.kinds.get(c, ""), "usd": usd}
        for c, usd in table.prices.items()
    ]
    return sorted(rows, key=lambda r: (order.get(r["kind"], 9), r["label"]))


def key_filter_choices(user) -> list[tuple[int, str]]:
    if user.is_staff:
        keys = visible_keys(user).only("pk", "name", "prefix", "user__username")
        return [(k.pk, f"{k.name} · {k.prefix}… ({k.user.username})") for k in keys]
    keys = visible_keys(user).only("pk", "name", "prefix")
    return [(k.pk, f"{k.name} · {k.prefix}…") for k in keys]
