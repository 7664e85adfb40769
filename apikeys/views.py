"""Dashboard pages for accounts and keys. Thin: forms validate, services write (``apikeys.services``).

The new key's secret is put in the session by the create POST and popped by the page it redirects to, so it
is shown exactly once (a reload, the back button or another visit shows only the prefix). A double
submission of the create form is stopped by a one-time token (``forms.claim_form_token``) and by the submit
button disabling itself.
"""

from __future__ import annotations

import time

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from relay.config import PRESETS, enabled_defences

from . import forms, governance, services
from .models import ApiKey
from .selectors import forget_cached_key, keys_for_user
from .validation import DocumentsInvalid

REVEAL_SESSION_KEY = "apikeys.reveal"  # {key id: secret}, each popped by its first display
DUPLICATE_WAIT_SECONDS = 5.0


# --- accounts -------------------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("apikeys:list")
    form = forms.SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            request, f"Welcome, {user.get_username()}! Create your first API key to get started."
        )
        return redirect("apikeys:list")
    return render(request, "registration/signup.html", {"form": form})


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You have been signed out.")
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your password was changed.")
        return response


# --- keys -----------------------------------------------------------------------------------------------


def _defences(key: ApiKey) -> list[dict]:
    return [
        {"name": name, "label": forms.DEFENCE_LABELS.get(name, name)}
        for name in enabled_defences(key.documents)
    ]


def _defence_prices() -> dict:
    """USD per 1M tokens that each defence adds (the price table the live total on Configure uses)."""
    from sessions.credits import price_table

    return dict(price_table().prices)


def _save_limits(key: ApiKey, values: dict) -> None:
    """Save a key's governance fields (``forms.KeyLimitsForm.values``); workers see them within
    ``RELAY_KEY_CACHE_SECONDS``."""
    for name, value in values.items():
        setattr(key, name, value)
    key.save(update_fields=[*values, "updated_at"])
    forget_cached_key(key.prefix)


@login_required
def key_list(request):
    request.session.pop(REVEAL_SESSION_KEY, None)  # a secret not displayed by now never will be
    keys = list(keys_for_user(request.user))
    budgets = governance.budget_statuses([k for k in keys if k.is_active])
    for key in keys:
        key.defences = _defences(key)
        key.budget = budgets.get(key.pk)
    return render(request, "apikeys/key_list.html", {"keys": keys})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def key_create(request):
    if request.method == "GET":
        arch = request.GET.get("arch")
        form = forms.CreateKeyForm(user=request.user, initial={"arch": arch} if arch in PRESETS else None)
        return render(request, "apikeys/key_create.html", {"form": form, "presets": forms.ARCH_INFO})

    form = forms.CreateKeyForm(request.POST, user=request.user)
    if not form.is_valid():
        if form.has_error("token"):
            form.refresh_token()
        return render(
            request, "apikeys/key_create.html", {"form": form, "presets": forms.ARCH_INFO}, status=400
        )
    nonce = form.cleaned_data["token"]
    if not forms.claim_form_token(nonce):
        return _duplicate_create(request, nonce)
    try:
        key, secret = services.do_create_api_key(
            user=request.user, name=form.cleaned_data["name"], arch=form.cleaned_data["arch"]
        )
    except DocumentsInvalid as exc:  # not expected with built-in presets, but never lose the token
        forms.release_form_token(nonce)
        for doc, msgs in exc.errors.items():
            form.add_error("arch" if doc == "arch" else None, msgs)
        return render(
            request, "apikeys/key_create.html", {"form": form, "presets": forms.ARCH_INFO}, status=400
        )
    except BaseException:
        forms.release_form_token(nonce)
        raise
    pending = request.session.get(REVEAL_SESSION_KEY) or {}
    pending[str(key.pk)] = secret
    request.session[REVEAL_SESSION_KEY] = pending
    request.session.save()  # before a duplicate submission can be sent to the reveal page
    forms.complete_form_token(nonce, key.pk)
    return redirect("apikeys:created", pk=key.pk)


def _duplicate_create(request, nonce: str):
    """The same form was submitted again (double click, reload): point at the key the first one created."""
    deadline = time.monotonic() + DUPLICATE_WAIT_SECONDS
    key_id = forms.form_token_result(nonce)
    while key_id is None and time.monotonic() < deadline:
        time.sleep(0.1)
        key_id = forms.form_token_result(nonce)
    if key_id is not None and ApiKey.objects.filter(pk=key_id, user=request.user).exists():
        messages.info(request, "This form was already submitted, so no second key was created.")
        return redirect("apikeys:created", pk=key_id)
    messages.info(
        request, "This form was already submitted. If the new key is not listed below, create it again."
    )
    return redirect("apikeys:list")


@never_cache
@login_required
def key_created(request, pk: int):
    key = get_object_or_404(ApiKey, pk=pk, user=request.user)
    pending = request.session.get(REVEAL_SESSION_KEY) or {}
    secret = pending.pop(str(key.pk), None)
    if secret is not None:
        if pending:
            request.session[REVEAL_SESSION_KEY] = pending
        else:
            del request.session[REVEAL_SESSION_KEY]
    base_url = request.build_absolute_uri("/").rstrip("/")
    return render(
        request,
        "apikeys/key_created.html",
        {"key": key, "secret": secret, "base_url": base_url, "defences": _defences(key)},
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def key_configure(request, pk: int):
    key = get_object_or_404(ApiKey, pk=pk, user=request.user)
    if request.method == "POST" and not key.is_active:
        messages.error(request, "This key is revoked; its configuration can no longer be changed.")
        return redirect("apikeys:configure", pk=key.pk)
    form = forms.ConfigureKeyForm(request.POST if request.method == "POST" else None, key=key)
    # The "Limits and access" section; a POST without it (an older page, a script) leaves them as they are.
    limits_posted = request.method == "POST" and "limits-present" in request.POST
    limits = forms.KeyLimitsForm(request.POST if limits_posted else None, key=key)
    if request.method == "POST" and form.is_valid() and (not limits_posted or limits.is_valid()):
        try:
            with transaction.atomic():
                services.do_update_api_key_config(
                    key=key,
                    arch=form.cleaned_data["arch"],
                    name=form.cleaned_data["name"],
                    content_logging=form.cleaned_data.get("content_logging") or None,
                    **form.cleaned_data["documents"],
                )
                if limits_posted:
                    _save_limits(key, limits.values())
        except DocumentsInvalid as exc:
            key.refresh_from_db()
            form.add_document_errors(exc.errors)
        else:
            messages.success(request, f"Saved the configuration of “{key.name}”.")
            return redirect("apikeys:list")
    status = 400 if form.is_bound else 200
    context = {
        "key": key,
        "form": form,
        "limits": limits,
        "budget": governance.budget_statuses([key]).get(key.pk),
        "presets": PRESETS,
        "defence_labels": forms.DEFENCE_LABELS,
        "defence_prices": _defence_prices(),
        "header_names": forms.HEADER_NAMES,
    }
    return render(request, "apikeys/key_configure.html", context, status=status)


@login_required
@require_http_methods(["POST"])
def key_generate_policy(request, pk: int):
    """JSON endpoint of the configure page's "Generate policy" helper; it saves nothing."""
    from .policy_generation import GenerationFailed, do_generate_policy

    get_object_or_404(ApiKey, pk=pk, user=request.user)
    try:
        policy = do_generate_policy(
            description=request.POST.get("description", ""),
            tools_json=request.POST.get("tools", ""),
            provider=request.POST.get("provider", ""),
            api_key=request.POST.get("provider_key", ""),
            model=request.POST.get("model", ""),
        )
    except GenerationFailed as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"policy": policy})


@login_required
@require_http_methods(["GET", "POST"])
def key_revoke(request, pk: int):
    key = get_object_or_404(ApiKey, pk=pk, user=request.user)
    if request.method == "POST":
        if services.do_revoke_api_key(key=key):
            messages.success(request, f"Revoked “{key.name}” ({key.prefix}…). It stops working immediately.")
        else:
            messages.info(request, f"“{key.name}” ({key.prefix}…) was already revoked.")
        return redirect(reverse("apikeys:list"))
    return render(request, "apikeys/key_revoke.html", {"key": key})
