"""Digests of JSON-like values that do not depend on key order."""

import hashlib
import json
from typing import Any


def canonical_digest(value: Any) -> str:
    """SHA-256 (hex) of the value as canonical JSON: keys sorted, anything else as text."""
    canonical = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
