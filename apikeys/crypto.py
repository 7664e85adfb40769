"""Encryption at rest for provider credentials: ``cryptography``'s MultiFernet keyed by FIELD_ENCRYPTION_KEY.

FIELD_ENCRYPTION_KEY is a comma-separated list of Fernet keys, newest first: new values are encrypted with
the first, all of them decrypt, so keys rotate by prepending a new one and running ``rotate_credentials``.
In DEBUG without a key, a development key is derived from SECRET_KEY so ``make run`` works out of the box.
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.FIELD_ENCRYPTION_KEY if k.strip()]
    if not keys:
        derived = base64.urlsafe_b64encode(
            hashlib.sha256(("fernet:" + settings.SECRET_KEY).encode()).digest()
        )
        keys = [derived.decode()]
    return MultiFernet([Fernet(k) for k in keys])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("stored credential cannot be decrypted with FIELD_ENCRYPTION_KEY") from None


def rotate(token: str) -> str:
    return _fernet().rotate(token.encode()).decode()
