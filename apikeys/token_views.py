"""Dashboard pages for personal access tokens of the management API (``apikeys.tokens``).

The list page also creates: a POST makes the token, puts its text in the session and redirects back, where
the page pops it and shows it once (a reload shows only the prefix). A double submission is stopped by the
one-time form token of the key pages (``forms.claim_form_token``).
"""

from __future__ import annotations

from datetime import timedelta

from django import forms as djforms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import forms, tokens
from .models import AccessToken

REVEAL_SESSION_KEY = "apikeys.token_reveal"  # {"id": token id, "token": text}, popped by its first display
EXPIRY_CHOICES = [
    ("", "Never"),
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
]


class CreateTokenForm(djforms.Form):
    name = djforms.CharField(
        max_length=100,
        widget=djforms.TextInput(attrs={"placeholder": "e.g. CI reports"}),
        help_text="Only for you, to recognise the token in the list.",
    )
    expires = djforms.ChoiceField(label="Expires", choices=EXPIRY_CHOICES, required=False)
    token = djforms.CharField(widget=djforms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["token"] = forms.issue_form_token(user)

    def clean_token(self) -> str:
        try:
            return signing.loads(
                self.cleaned_data["token"],
                salt=f"apikeys.form-token:{self.user.pk}",
                max_age=forms.TOKEN_MAX_AGE,
            )
        except signing.BadSignature:
            raise djforms.ValidationError("This form has expired. Please submit it again.") from None

    def expires_at(self):
        days = self.cleaned_data.get("expires")
        return timezone.now() + timedelta(days=int(days)) if days else None


def _render(request, form, status=200):
    reveal = request.session.pop(REVEAL_SESSION_KEY, None)
    return render(
        request,
        "apikeys/tokens.html",
        {
            "form": form,
            "tokens": list(tokens.tokens_for_user(request.user)),
            "reveal": reveal,
            "base_url": request.build_absolute_uri("/").rstrip("/"),
        },
        status=status,
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request):
    if request.method == "GET":
        return _render(request, CreateTokenForm(user=request.user))
    form = CreateTokenForm(request.POST, user=request.user)
    if not form.is_valid():
        if form.has_error("token"):
            data = form.data.copy()
            data["token"] = forms.issue_form_token(request.user)
            form.data = data
        return _render(request, form, status=400)
    nonce = form.cleaned_data["token"]
    if not forms.claim_form_token(nonce):
        messages.info(request, "This form was already submitted, so no second token was created.")
        return redirect("tokens:list")
    try:
        record, text = tokens.do_create_access_token(
            user=request.user, name=form.cleaned_data["name"], expires_at=form.expires_at()
        )
    except BaseException:
        forms.release_form_token(nonce)
        raise
    request.session[REVEAL_SESSION_KEY] = {"id": record.pk, "token": text, "name": record.name}
    forms.complete_form_token(nonce, record.pk)
    return redirect("tokens:list")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request, pk: int):
    record = get_object_or_404(AccessToken, pk=pk, user=request.user)
    if request.method == "POST":
        if tokens.do_revoke_access_token(token=record):
            messages.success(request, f"Revoked the token “{record.name}” ({record.prefix}…).")
        else:
            messages.info(request, f"The token “{record.name}” ({record.prefix}…) was already revoked.")
        return redirect("tokens:list")
    return render(request, "apikeys/tokens_revoke.html", {"token": record})
