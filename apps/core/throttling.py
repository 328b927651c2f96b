"""Per-caller rate limits: one cache increment per request (fixed window).

DRF's SimpleRateThrottle keeps a list of every request time in the window and rewrites
it on each request, which costs O(rate) per call at the rates API keys need.
"""

import logging
import time
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

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


def client_ip(request) -> str | None:
    """The caller's address, read through FLOWSITE_TRUSTED_PROXIES (DRF's NUM_PROXIES).

    Every per-client limit uses it: the rate limits, failed API keys and the admin's login
    lockout. Takes a DRF or a plain Django request (it reads only `META`).
    """
    return BaseThrottle().get_ident(request)


@lru_cache
def parse_rate(rate: str) -> tuple[int, int]:
    """'6000/min' -> (6000, 60)."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip().lower()]


def _window(scope: str, ident: str, rate: str) -> tuple[str, int, float]:
    limit, period = parse_rate(rate)
    now = time.time()
    window = int(now // period)
    return f"throttle:{scope}:{ident}:{window}", limit, (window + 1) * period - now


# After the cache failed, it is not asked again for this long (per process): a Redis that
# stopped answering made every call wait its socket timeout first.
CACHE_RETRY_SECONDS = 5.0
_cache_down_until = 0.0


def hit(scope: str, ident: str, rate: str) -> float | None:
    """Count one request in this window; the seconds to wait when over the limit, else None.

    Fails open: a cache outage must not turn every API call into an error (README says
    that limits are off while the cache is unreachable).
    """
    global _cache_down_until
    if time.monotonic() < _cache_down_until:
        return None
    key, limit, remaining = _window(scope, ident, rate)
    try:
        count = _count(key, timeout=int(remaining) + 2)
    except Exception as exc:
        unreachable = isinstance(exc, redis.ConnectionError | redis.TimeoutError)
        if unreachable:  # left alone for a while; any other error is this call's only
            _cache_down_until = time.monotonic() + CACHE_RETRY_SECONDS
        logger.warning(
            "Rate limiting is off%s: the cache is unavailable",
            f" for {CACHE_RETRY_SECONDS} s" if unreachable else " for this call",
            exc_info=True,
        )
        return None
    return remaining if count > limit else None


def _count(key: str, *, timeout: int) -> int:
    """Add one to the counter `key` (made with `timeout` if missing); the count after.

    On Redis, one round trip: SET NX with its expiry and INCR, pipelined. Django's add()
    and incr() make three (SET NX, then EXISTS and INCR), on every API call. The counter
    is a plain integer, as Django's Redis serializer stores integers, so cache.get() reads
    it (exhausted())."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        redis_key = backend.make_and_validate_key(key)
        pipeline = _redis_client(backend).pipeline(transaction=False)
        pipeline.set(redis_key, 0, ex=timeout, nx=True)
        pipeline.incr(redis_key)
        return pipeline.execute()[1]
    backend.add(key, 0, timeout=timeout)
    try:
        return backend.incr(key)
    except ValueError:  # evicted between add and incr
        backend.set(key, 1, timeout=timeout)
        return 1


def _redis_client(backend: RedisCache):
    """The redis.Redis client of the backend's primary (where writes go), made once per
    backend.

    Django's RedisCache builds a new redis.Redis for every operation (`_cache.get_client`,
    the client its own add() and incr() use), which costs more CPU than the round trip.
    The backend is per thread (caches are thread-local) and the client's connection pool is
    Django's, so keeping the client on it shares nothing new between threads."""
    client = getattr(backend, "_flowsite_write_client", None)
    if client is None:
        client = backend._flowsite_write_client = backend._cache.get_client(write=True)
    return client


def exhausted(scope: str, ident: str, rate: str) -> float | None:
    """Like hit() without counting: the seconds to wait when the limit is used up."""
    if time.monotonic() < _cache_down_until:
        return None
    key, limit, remaining = _window(scope, ident, rate)
    try:
        count = cache.get(key) or 0
    except Exception:
        return None
    return remaining if count >= limit else None


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
        return "anon", client_ip(request)

    def allow_request(self, request, view) -> bool:
        scope, ident = self.scope_and_ident(request)
        self.retry_after = hit(scope, ident, settings.FLOWSITE_THROTTLE_RATES[scope])
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after
