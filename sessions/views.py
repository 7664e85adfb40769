"""Dashboard pages for sessions, usage and credits (thin: reads are in ``selectors``). Mounted at /dashboard/."""

from __future__ import annotations

import csv
import dataclasses
import json
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import credits, previews, selectors
from .forms import OverviewFilterForm, SessionFilterForm
from .models import DISPLAY_LABELS

PAGE_SIZE = 25


def _query(params: dict, **changes) -> str:
    merged = {k: v for k, v in {**params, **changes}.items() if v not in (None, "")}
    return "?" + urlencode(merged) if merged else "?"


def _range_tabs(params: dict, current: str) -> list[dict]:
    short = {"24h": "24 h", "7d": "7 d", "30d": "30 d"}
    return [
        {"code": c, "label": short[c], "title": label, "url": _query(params, range=c), "active": c == current}
        for c, label in selectors.RANGES.items()
    ]


@login_required
@require_GET
def overview(request):
    form = OverviewFilterForm(request.GET, user=request.user)
    data = form.cleaned_data if form.is_valid() else {}
    rng = selectors.resolve_range(data.get("range"))
    base = selectors.scope_for(request.user)
    key_id = data.get("key") or None
    model = data.get("model") or None
    scope = base.narrowed(key_id)
    ov = selectors.overview(scope, rng, model)
    if not ov["totals"].requests and not key_id and not model and not selectors.has_any_usage(base):
        return render(request, "sessions/overview_empty.html", {})
    models = (
        [r["model"] for r in ov["model_rows"] if r["model"] != "(none)"]
        if not model
        else selectors.models_in_range(scope, rng)
    )
    params = {"range": rng.code, "key": key_id, "model": model}
    return render(
        request,
        "sessions/overview.html",
        {
            "form": form,
            "rng": rng,
            "ov": ov,
            "totals": ov["totals"],
            "models": models,
            "model": model,
            "key_id": key_id,
            "range_tabs": _range_tabs(params, rng.code),
            "chart_data": ov["chart"],
            "sessions_url_query": _query({"key": key_id}),
        },
    )


def _session_list_context(request) -> dict:
    form = SessionFilterForm(request.GET, user=request.user)
    filters = form.filters()
    scope = selectors.scope_for(request.user)
    page = Paginator(selectors.sessions(scope, filters), PAGE_SIZE).get_page(request.GET.get("page"))
    previews.attach_previews(page.object_list, filters.q)
    counts = selectors.session_status_counts(scope, filters)
    params = filters.as_query()
    tabs = [
        {
            "code": "",
            "label": "All",
            "count": counts[""],
            "url": _query(params, status=None),
            "active": not filters.status,
        }
    ]
    tabs += [
        {
            "code": s,
            "label": label,
            "count": counts[s],
            "url": _query(params, status=s),
            "active": filters.status == s,
        }
        for s, label in DISPLAY_LABELS.items()
    ]
    page_params = {**params, "page": page.number} if page.number > 1 else params
    return {
        "form": form,
        "page": page,
        "filters": filters,
        "status_tabs": tabs,
        "is_filtered": bool(params),
        "page_query": _query(params),
        "export_query": _query(params)[1:],
        "live_query": _query(page_params)[1:],
        "show_owner": request.user.is_staff,
    }


@login_required
@require_GET
def session_list(request):
    return render(request, "sessions/session_list.html", _session_list_context(request))


@login_required
@require_GET
def session_list_live(request):
    """The changing parts of the sessions list (status counts, rows, pagination) for its "Live" toggle, which
    polls this and swaps them in place instead of reloading the page."""
    response = render(request, "sessions/_session_results.html", _session_list_context(request))
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def session_detail(request, session_id):
    session = selectors.get_session(request.user, session_id)
    if session is None:
        raise Http404("No such session")
    timeline = selectors.session_timeline(session)
    return render(
        request,
        "sessions/session_detail.html",
        {
            "session": session,
            "t": timeline,
            "show_owner": request.user.is_staff,
        },
    )


@login_required
@require_GET
def key_usage(request, pk: int):
    key = selectors.get_visible_key(request.user, pk)
    if key is None:
        raise Http404("No such key")
    rng = selectors.resolve_range(request.GET.get("range"))
    scope = selectors.scope_for(request.user).narrowed(key.pk)
    ov = selectors.overview(scope, rng)
    price, breakdown = credits.key_price(key)
    recent = selectors.recent_sessions(scope, 10)
    previews.attach_previews(recent)
    return render(
        request,
        "sessions/key_usage.html",
        {
            "key": key,
            "rng": rng,
            "ov": ov,
            "totals": ov["totals"],
            "chart_data": ov["chart"],
            "range_tabs": _range_tabs({"range": rng.code}, rng.code),
            "recent": recent,
            "price": price,
            "breakdown": breakdown,
            "defences": credits.enabled_defences(key.features),
        },
    )


@login_required
@require_GET
def credits_page(request):
    scope = selectors.scope_for(request.user)
    data = selectors.credit_overview(request.user, scope)
    return render(
        request,
        "sessions/credits.html",
        {
            **data,
            "price_rows": selectors.price_rows(data["prices"]),
            "enforced": settings.CREDITS_ENFORCED,
            "chart_data": data["chart"],
            "show_owner": request.user.is_staff,
        },
    )


# --- exports ------------------------------------------------------------------------------------------------------


class _Echo:
    def write(self, value):
        return value


# A cell a spreadsheet would read as a formula (OWASP "CSV injection"): client-chosen text (a model string, a
# key name) must never start one. Such a cell gets a leading apostrophe, which shows it as text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        value = ",".join(str(v) for v in value)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _stream(rows, columns, fmt: str):
    if fmt == "csv":
        writer = csv.writer(_Echo())
        yield writer.writerow(columns)
        for row in rows:
            yield writer.writerow([_csv_cell(row[c]) for c in columns])
    else:
        for row in rows:
            yield json.dumps(row, ensure_ascii=False, default=str) + "\n"


@login_required
@require_GET
def export(request, what: str, fmt: str):
    if what not in ("sessions", "usage") or fmt not in ("csv", "jsonl"):
        raise Http404("Unknown export")
    filters = SessionFilterForm(request.GET, user=request.user).filters()
    if request.GET.get("session"):
        try:
            filters = dataclasses.replace(filters, session_id=uuid.UUID(request.GET["session"]))
        except ValueError:
            raise Http404("No such session") from None
    scope = selectors.scope_for(request.user)
    if what == "sessions":
        rows = selectors.export_sessions(scope, filters, with_steps=fmt == "jsonl")
        columns = selectors.SESSION_COLUMNS
    else:
        rows = selectors.export_usage(scope, filters)
        columns = selectors.USAGE_COLUMNS
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    response = StreamingHttpResponse(_stream(rows, columns, fmt), content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="sequrity-{what}-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response
