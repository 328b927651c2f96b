"""Connection secrets at rest, and opaque paging cursors: Fernet under
FLOWSITE_ENCRYPTION_KEY (rotation-friendly)."""

import base64
import hashlib
import json
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@cache
def _fernet(keys: str) -> MultiFernet:
    # Any string of >= 32 bytes is accepted; Fernet wants 32 url-safe base64 bytes.
    return MultiFernet(
        [
            Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.strip().encode()).digest()))
            for key in keys.split(",")
            if key.strip()
        ]
    )


def encrypt_json(values: dict) -> str:
    if not values:
        return ""
    return _fernet(settings.FLOWSITE_ENCRYPTION_KEY).encrypt(json.dumps(values).encode()).decode()


class Undecryptable(ValueError):
    """Secrets stored under a FLOWSITE_ENCRYPTION_KEY this process does not have."""


def decrypt_json(token: str) -> dict:
    if not token:
        return {}
    try:
        return json.loads(_fernet(settings.FLOWSITE_ENCRYPTION_KEY).decrypt(token.encode()))
    except (InvalidToken, UnicodeEncodeError):
        raise Undecryptable(
            "its stored secrets cannot be decrypted: FLOWSITE_ENCRYPTION_KEY changed. "
            "Restore the old key (comma-separated after the new one) or re-enter them."
        ) from None
