"""The configure page's policy tools: dry-run of the edited policy, versions with their diffs, revert.

Every view looks the key up among the signed-in user's own keys: another user's key is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import forms, services, versions
from .dryrun import DEFAULT_LIMIT, MAX_LIMIT, do_dry_run, result_json
from .models import ApiKey
from .validation import DocumentsInvalid


def _limit(raw) -> int | None:
    try:
        value = int(raw) if raw not in (None, "") else DEFAULT_LIMIT
    except (TypeError, ValueError):
        return None
    return value if 1 <= value <= MAX_LIMIT else None


def _form_errors(form) -> dict[str, list[str]]:
    return {name: [str(m) for m in errs] for name, errs in form.errors.items()}


@login_required
@require_http_methods(["POST"])
def key_dry_run(request, pk: int):
    """JSON: what the edited (unsaved) policy would have done to the key's recorded tool calls.

    The page posts the whole configure form, so the policy replayed is exactly the one Save would store (or a
    ``policy`` field holding an X-Policy document). Errors name the form field. Nothing is saved.
    """
    key = get_object_or_404(ApiKey, pk=pk, user=request.user)
    limit = _limit(request.POST.get("limit"))
    if limit is None:
        message = f"limit: a whole number from 1 to {MAX_LIMIT}"
        return JsonResponse({"error": message, "errors": {"limit": [message]}}, status=400)
    form = None
    if "policy" in request.POST:
        policy = request.POST["policy"]
    else:
        form = forms.ConfigureKeyForm(request.POST, key=key)
        if not form.is_valid():
            return JsonResponse(
                {"error": "Fix the form's errors first.", "errors": _form_errors(form)}, status=400
            )
        policy = form.cleaned_data["documents"]["policy"]
    try:
        result = do_dry_run(key=key, policy=policy, limit=limit)
    except DocumentsInvalid as exc:
        errors = exc.errors
        if form is not None:
            form.add_document_errors(exc.errors)
            errors = _form_errors(form)
        return JsonResponse({"error": str(exc), "errors": errors}, status=400)
    data = result_json(result)
    rows = data["newly_denied"] + data["newly_allowed"]
    data["html"] = render_to_string(
        "apikeys/_policy_dryrun.html", {"key": key, "dryrun": data, "rows": rows}, request=request
    )
    return JsonResponse(data)


@never_cache
@login_required
@require_http_methods(["GET"])
def key_versions(request, pk: int):
    """A fragment the configure page's versions panel loads: the diff of version ``?diff=N`` against its
    predecessor (or ``?against=M``)."""
    key = get_object_or_404(ApiKey, pk=pk, user=request.user)
    context = {"key": key, "loaded": True}
    shown = versions.version_of(key, request.GET.get("diff")) if request.GET.get("diff") else None
    if shown is not None:
        against = (
            versions.version_of(key, request.GET.get("against"))
            if request.GET.get("against")
            else versions.version_of(key, shown.number - 1)
        )
        if against is not None:
            context.update(diff_new=shown, diff_old=against, diff=versions.diff_versions(against, shown))
    return render(request, "apikeys/_policy_versions.html", context)


@login_required
@require_http_methods(["POST"])
def key_revert(request, pk: int, number: int):
    """Restore version ``number`` as a new version (one click on the configure page)."""
    key = get_object_or_404(ApiKey, pk=pk, user=request.user)
    if not key.is_active:
        messages.error(request, "This key is revoked; its configuration can no longer be changed.")
    elif versions.version_of(key, number) is None:
        messages.error(request, f"“{key.name}” has no version {number}.")
    else:
        try:
            version = services.do_revert_to_version(key=key, number=number, saved_by=request.user)
        except DocumentsInvalid as exc:
            messages.error(request, f"Version {number} no longer validates: {exc}")
        else:
            messages.success(
                request, f"Restored version {number} of “{key.name}” as version {version.number}."
            )
    return redirect(reverse("apikeys:configure", args=[key.pk]) + "#policy-versions")
