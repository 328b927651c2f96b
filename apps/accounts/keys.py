"""The API key format and its keyed hash. Pure functions, no database."""

import hashlib
import hmac
import re
import secrets

from django.conf import settings

KEY_PREFIX = "fs_"
KEY_RANDOM_BYTES = 32
PREFIX_LENGTH = 12  # "fs_" + 9 random characters: ~54 bits, plenty to find a key by
KEY_PATTERN = re.compile(r"fs_[A-Za-z0-9_-]{43}")


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def is_well_formed(raw: str) -> bool:
    return KEY_PATTERN.fullmatch(raw) is not None


def digest(raw: str) -> str:
    """HMAC-SHA256 of the key under FLOWSITE_API_KEY_SECRET, hex."""
    return hmac.new(settings.FLOWSITE_API_KEY_SECRET, raw.encode(), hashlib.sha256).hexdigest()


def lookup_prefix(raw: str) -> str:
    return raw[:PREFIX_LENGTH]
