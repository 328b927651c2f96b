"""Per-caller rate limits: one cache increment per request (fixed window).

DRF's SimpleRateThrottle keeps a list of every request time in the window and rewrites
it on each request, which costs O(rate) per call at the rates API keys need.
"""

import time
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

PERIODS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


@lru_cache
def parse_rate(rate: str) -> tuple[int, int]:
    """'6000/min' -> (6000, 60)."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip().lower()]


class CallerRateThrottle(BaseThrottle):
    """Limits by API key, else by signed-in user, else by client IP (anonymous)."""

    def __init__(self):
        self.retry_after: float | None = None

    def scope_and_ident(self, request) -> tuple[str, str]:
        key = request.auth
        if key is not None and getattr(key, "pk", None) is not None:
            return "key", str(key.pk)
        if request.user and request.user.is_authenticated:
            return "user", str(request.user.pk)
        return "anon", self.get_ident(request)

    def allow_request(self, request, view) -> bool:
        scope, ident = self.scope_and_ident(request)
        limit, period = parse_rate(settings.FLOWSITE_THROTTLE_RATES[scope])
        now = time.time()
        window = int(now // period)
        cache_key = f"throttle:{scope}:{ident}:{window}"
        cache.add(cache_key, 0, timeout=period + 1)
        try:
            count = cache.incr(cache_key)
        except ValueError:  # evicted between add and incr
            cache.set(cache_key, 1, timeout=period + 1)
            count = 1
        if count > limit:
            self.retry_after = (window + 1) * period - now
            return False
        return True

    def wait(self) -> float | None:
        return self.retry_after
