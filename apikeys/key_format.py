"""What a Sequrity API key secret looks like: read by the authentication (``selectors``) and written by
``services`` when a key is created, so neither has to import the other for it."""

from __future__ import annotations

SECRET_PREFIX = "sq-"
PREFIX_LENGTH = 12  # "sq-" + 9 characters: shown in lists, used for the indexed lookup
