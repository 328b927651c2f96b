"""When to try a failed call again, and how long to wait first."""

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Statuses that say "not now" rather than "never": worth another try.
RETRIABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Statuses whose Retry-After header tells how long to wait.
RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay_before(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before `attempt` (2 is the first retry).

        Exponential backoff with full jitter, so that many flows failing together do not
        retry in lockstep; a server's own Retry-After wins, capped by `max_delay_s`.
        """
        if retry_after is not None:
            return min(retry_after, self.max_delay_s)
        # The exponent is capped so a huge max_attempts cannot overflow the float.
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(attempt - 2, 64))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (delay in seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
