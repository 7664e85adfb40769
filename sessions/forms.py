"""GET filter forms of the dashboard pages (plain forms: they work without JavaScript)."""

from __future__ import annotations

from django import forms

from apikeys.models import Architecture

from . import selectors
from .models import DISPLAY_LABELS


class _KeyChoiceMixin:
    def _key_field(self, user) -> None:
        self.fields["key"].choices = [("", "All keys"), *selectors.key_filter_choices(user)]

    def key_id(self) -> int | None:
        value = self.cleaned_data.get("key") if self.is_valid() else None
        return int(value) if value else None


class OverviewFilterForm(_KeyChoiceMixin, forms.Form):
    range = forms.ChoiceField(choices=list(selectors.RANGES.items()), required=False)
    key = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    model = forms.CharField(required=False, max_length=200)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self._key_field(user)


class SessionFilterForm(_KeyChoiceMixin, forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Words of the first message or program",
                "autocomplete": "off",
                "enterkeyhint": "search",
            }
        ),
    )
    key = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    arch = forms.ChoiceField(choices=[("", "All architectures"), *Architecture.choices], required=False)
    status = forms.ChoiceField(choices=[("", "All statuses"), *DISPLAY_LABELS.items()], required=False)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self._key_field(user)

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def filters(self) -> selectors.SessionFilters:
        """The valid filters (invalid fields are ignored, so a bad URL still shows a page)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return selectors.SessionFilters(
            key_id=data.get("key") or None,
            arch=data.get("arch") or "",
            status=data.get("status") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            q=data.get("q") or "",
        )
