"""Flowsite's one outbound HTTP client: pooled, time-boxed, size-limited, retrying, guarded.

Every call a flow makes goes through `OutboundClient.send`, so the limits below hold for
all of them: a flow cannot hang a worker, exhaust its memory or reach the private network.
"""

import contextlib
import http.client
import json as jsonlib
import logging
import re
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, quote, urlencode, urljoin, urlsplit, urlunsplit

import urllib3
from django.conf import settings
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import (
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from apps.core.redaction import redact_url
from apps.flows.outbound.auth import (
    OAUTH2_CLIENT_CREDENTIALS,
    Token,
    connection_secrets,
    is_safe_header,
    parse_token_response,
    static_headers,
    token_form,
)
from apps.flows.outbound.errors import (
    DeadlineExceeded,
    HttpStatusError,
    OutboundError,
    ResponseTooLarge,
    excerpt,
    redact_secrets,
    secret_forms,
)
from apps.flows.outbound.guard import AddressPolicy, GuardedPool
from apps.flows.outbound.origin import (
    CREDENTIALS_IN_URL,
    DEFAULT_PORTS,
    Destination,
    Origin,
    locate,
    origin_of,
    shown,
)
from apps.flows.outbound.retry import (
    RETRIABLE_STATUSES,
    RETRY_AFTER_STATUSES,
    RetryPolicy,
    retry_after_seconds,
)
from apps.flows.outbound.values import ConnectionConfig, HttpRequest, HttpResponse

# A URL's query in a message: left out of the log, where secrets must not go.
QUERY = re.compile(r"\?[^\s]*")
logger = logging.getLogger("flowsite.outbound")

USER_AGENT = "Flowsite"
MAX_REDIRECTS = 5
# Pools kept at once (one per connection key); the least recently used is closed.
MAX_POOL_MANAGERS = 256
# Idle keep-alive connections kept per host and connection, at least; a connection whose
# `concurrency` is higher keeps that many, so parallel calls never reconnect.
POOL_MAXSIZE = 10
_READ_CHUNK_BYTES = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Set by the client alone: the framing of the body, and the Host, which is the URL's.
_CLIENT_HEADERS = ("Content-Length", "Transfer-Encoding", "Host")
# An obsolete line folding inside a header value (RFC 9112, 5.2), as urllib3 unfolds it.
_OBSOLETE_FOLD = re.compile(r"(?:(?<![ \t])[ \t]+)?\r\n[ \t]+")
# Any scheme counts as absolute, so "ftp://..." is refused rather than appended to the base.
_ABSOLUTE_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_SINGLE_ATTEMPT = RetryPolicy(max_attempts=1)


def build_url(base_uri: str, url: str, query: Mapping[str, Any]) -> str:
    """The absolute URL to call: `url` joined to `base_uri` unless absolute, plus `query`.

    Query values may be lists (the key repeats); booleans are written as true/false, as JSON
    APIs expect; None values are left out. Parameters already in `url` are kept.
    """
    if _ABSOLUTE_URL.match(url):
        target = url
    elif url:
        target = f"{base_uri.rstrip('/')}/{url.lstrip('/')}"
    else:
        target = base_uri
    parts = check_url(target)
    pairs = [
        (name, _query_value(item))
        for name, value in query.items()
        for item in (value if isinstance(value, list | tuple) else [value])
        if item is not None
    ]
    query_string = "&".join(filter(None, [parts.query, urlencode(pairs, quote_via=quote)]))
    return urlunsplit(parts._replace(query=query_string, fragment=""))


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_url(url: str) -> SplitResult:
    """`url` split, if the client can call it: absolute http(s), without credentials in it."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise OutboundError(CREDENTIALS_IN_URL)
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        raise OutboundError(f"Cannot call {url!r}: only absolute http and https URLs can be called")
    try:
        parts.port  # noqa: B018 - parsed lazily; an invalid port raises here
    except ValueError as exc:
        raise OutboundError(f"Cannot call {url!r}: {exc}") from exc
    return parts


def check_origin(connection: ConnectionConfig, url: str) -> Destination:
    """Where `url` goes, if it is on the connection's origin; else an OutboundError before
    any call.

    A relative URI can become an absolute URL to another host once its templates are
    filled in (or a next link can point there): the connection's credentials must not go
    with it, so it is not called at all.
    """
    home = _home(connection.base_uri)
    destination = locate(url)
    if home is None or destination is None or destination.origin != home:
        raise OutboundError(
            f"Refused to call {url}: it is not on the connection's {shown(home)}, and the "
            "connection's credentials go only to its own host (same scheme, host and port). "
            "Use a connection for that host.",
            url=url,
        )
    return destination


def _destination(url: str) -> Destination:
    """Where a checked URL (see check_url) goes, as the connection will see it."""
    destination = locate(url)
    if destination is None:
        raise OutboundError(f"Cannot call {url!r}: it is not an http(s) URL", url=url)
    return destination


@lru_cache(maxsize=1024)
def _home(base_uri: str) -> Origin | None:
    """A connection's origin: read once per base URI, not on every call."""
    return origin_of(base_uri)


def _strip_to_safe_headers(headers: HTTPHeaderDict, credentials: frozenset[str]) -> None:
    """Keep only the safe-list headers: what a redirect to another origin may receive. The
    headers the connection's authentication sets go whatever their name (an API key sent
    as "Accept" followed a redirect to another host; an outside probe)."""
    for name in list(headers):
        if not is_safe_header(name) or name.lower() in credentials:
            headers.discard(name)


@dataclass(frozen=True)
class _Budget:
    """The time one try may take: every redirect hop and a token request share it."""

    started: float
    deadline: float  # a clock() value
    timeout_ms: int  # for messages


class _Slot:
    """One connection's pool and OAuth2 token, evicted together."""

    def __init__(self, pool: GuardedPool) -> None:
        self.pool = pool
        self.token: Token | None = None
        # Held while fetching, so concurrent calls wait for one token request.
        self.token_lock = threading.Lock()


def _reason(error: BaseException) -> str:
    """The underlying cause of a failure, without urllib3's object dump."""
    cause = error.__cause__
    if cause is None and isinstance(error, ProtocolError) and len(error.args) > 1:
        cause = error.args[1]
    cause = cause or error
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause)


def _netloc(url: str) -> str:
    return urlsplit(url).netloc


def _timed_out(url: str, budget: _Budget) -> OutboundError:
    return OutboundError(
        f"Timed out after {budget.timeout_ms} ms waiting for {url}", retriable=True, url=url
    )


def _outbound_error(
    error: BaseException, url: str, budget: _Budget, *, sent: bool
) -> BaseException:
    """What a failed round trip raises: an OutboundError with a message a flow author can
    act on, whatever raised it (the address guard, urllib3, http.client, ssl, the socket).

    `sent`: the request went out, so a ValueError is about the answer (a chunk size that
    is no number, say), not about the request."""
    if isinstance(error, OutboundError):
        error.url = error.url or url
        return error
    if isinstance(error, NameResolutionError):
        message = f"Could not connect to {_netloc(url)}: the host name did not resolve"
        return OutboundError(f"{message} ({_reason(error)})", retriable=True, url=url)
    # NewConnectionError subclasses ConnectTimeoutError, so it is tested before timeouts.
    if isinstance(error, NewConnectionError):
        message = f"Could not connect to {_netloc(url)}: {_reason(error)}"
        return OutboundError(message, retriable=True, url=url)
    if isinstance(error, Urllib3TimeoutError | TimeoutError):
        return _timed_out(url, budget)
    if isinstance(error, SSLError | ssl.SSLError | ssl.CertificateError):
        message = f"Could not connect to {_netloc(url)}: TLS failed: {_reason(error)}"
        return OutboundError(message, retriable=True, url=url)
    if isinstance(error, http.client.InvalidURL) or (isinstance(error, ValueError) and not sent):
        # http.client's verdict on an invalid method, path or header
        return OutboundError(f"Invalid request to {url}: {error}", url=url)
    if isinstance(error, ProtocolError | OSError | http.client.HTTPException | ValueError):
        message = f"Connection to {_netloc(url)} broke off: {_reason(error)}"
        return OutboundError(message, retriable=True, url=url)
    if isinstance(error, HTTPError):
        return OutboundError(f"Request to {url} failed: {error}", url=url)
    return error


def _redacted(error: OutboundError, secrets: tuple[str, ...]) -> OutboundError:
    """The error with the connection's secrets taken out of its message (http.client, for
    one, quotes an invalid header's value)."""
    message = redact_secrets(error.message, secret_forms(secrets))
    if message != error.message:
        error.message = message
        error.args = (message,)
    return error


def _encode_body(request: HttpRequest, headers: HTTPHeaderDict) -> bytes | None:
    if request.json is None:
        return request.body
    if request.body is not None:
        raise OutboundError("An HttpRequest has either a json or a raw body, not both")
    try:
        data = jsonlib.dumps(request.json, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise OutboundError(f"The request body cannot be sent as JSON: {exc}") from exc
    headers.setdefault("Content-Type", "application/json")
    return data.encode()


Readable = http.client.HTTPResponse | urllib3.HTTPResponse


def _headers_of(raw: http.client.HTTPResponse) -> dict[str, str]:
    """The response's headers with lower-cased names; a repeated header's values joined by
    ", ", and folded lines unfolded, as urllib3 gives them."""
    headers: dict[str, str] = {}
    for name, value in raw.getheaders():
        if "\r\n" in value:
            value = _OBSOLETE_FOLD.sub(" ", value)
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _decoding(raw: http.client.HTTPResponse, headers: dict[str, str], method: str) -> Readable:
    """What reads the body: urllib3's decoder when the server encoded it (gzip, deflate),
    so the size limit holds for what the flow gets; else the response itself."""
    if "content-encoding" not in headers:
        return raw
    return urllib3.HTTPResponse(
        body=raw,
        headers=headers,
        status=raw.status,
        preload_content=False,
        decode_content=True,
        original_response=raw,
        request_method=method,
    )


class OutboundClient:
    """Sends requests for flows; one instance serves every thread of a process.

    `sleep` and `clock` are injectable so tests can record backoff delays instead of
    waiting; `clock` must be monotonic, and deadlines passed to `send` are its values.
    """

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: OrderedDict[str, _Slot] = OrderedDict()

    def send(
        self,
        connection: ConnectionConfig,
        request: HttpRequest,
        *,
        deadline: float | None = None,
        retry: RetryPolicy | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> HttpResponse:
        """One logical call: the response for a status below 400, else an OutboundError.

        Transient failures are retried per `retry` (None means a single attempt). Each try
        may take the connection's timeout, but never past `deadline` (a clock() value), and
        no backoff sleeps past it either. Whether to retry a non-idempotent request is the
        caller's choice: it passes `retry` or not.
        """
        policy = retry or _SINGLE_ATTEMPT
        url = build_url(connection.base_uri, request.url, request.query)
        destination = check_origin(connection, url)
        slot = self._slot(connection)
        failure: OutboundError | None = None
        attempt = 0
        while True:
            attempt += 1
            if cancelled is not None and cancelled():
                raise OutboundError("Cancelled", url=url, attempts=attempt - 1)
            budget = self._budget(connection, deadline, url, attempt, failure)
            retry_after = None
            try:
                response = self._try(slot, connection, request, destination, budget)
            except OutboundError as error:
                failure = _redacted(error, self._secrets(connection, slot))
            else:
                response.secrets = self._secrets(connection, slot)
                if response.status < 400:
                    return response
                # The URL a redirect led to may quote a credential, or carry secret-looking
                # query parameters of its own (a signed URL's signature).
                shown_url = redact_secrets(redact_url(response.url), secret_forms(response.secrets))
                failure = HttpStatusError(
                    f"HTTP {response.status} from {shown_url}",
                    retriable=response.status in RETRIABLE_STATUSES,
                    status=response.status,
                    body_excerpt=excerpt(response.body, response.secrets),
                    url=shown_url,
                )
                if response.status in RETRY_AFTER_STATUSES:
                    retry_after = retry_after_seconds(response.headers.get("retry-after"))
            failure.attempts = attempt
            if not failure.retriable or attempt >= policy.max_attempts:
                raise failure
            delay = policy.delay_before(attempt + 1, retry_after)
            if deadline is not None and self._clock() + delay >= deadline:
                raise self._deadline_exceeded(url, attempt, failure) from failure
            logger.info(  # the URL without its query, which may carry secrets (a probe)
                "Retrying %s %s in %.2f s after attempt %d (%s)",
                request.method.upper(),
                url.partition("?")[0],
                delay,
                attempt,
                QUERY.sub("?…", failure.message),
            )
            self._sleep(delay)

    @staticmethod
    def _secrets(connection: ConnectionConfig, slot: _Slot) -> tuple[str, ...]:
        token = slot.token.value if slot.token is not None else ""
        return connection_secrets(connection, token)

    def close(self) -> None:
        """Close every pooled connection; the client stays usable and reconnects on demand."""
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            slot.pool.close()

    def _slot(self, connection: ConnectionConfig) -> _Slot:
        with self._lock:
            slot = self._slots.get(connection.key)
            if slot is not None:
                self._slots.move_to_end(connection.key)
                return slot
            policy = AddressPolicy.from_allowlist(connection.allowed_private_hosts)
            maxsize = max(POOL_MAXSIZE, connection.concurrency)
            slot = _Slot(GuardedPool(policy, maxsize=maxsize))
            self._slots[connection.key] = slot
            evicted = None
            if len(self._slots) > MAX_POOL_MANAGERS:
                evicted = self._slots.popitem(last=False)[1]
        if evicted is not None:
            # Connections in use finish normally: a closed pool discards them when returned.
            evicted.pool.close()
        return slot

    def _budget(
        self,
        connection: ConnectionConfig,
        deadline: float | None,
        url: str,
        attempt: int,
        failure: OutboundError | None,
    ) -> _Budget:
        now = self._clock()
        timeout_s = (connection.timeout_ms or settings.FLOWSITE_OUTBOUND_TIMEOUT_MS) / 1000
        if deadline is not None:
            if deadline <= now:
                raise self._deadline_exceeded(url, attempt - 1, failure)
            timeout_s = min(timeout_s, deadline - now)
        return _Budget(started=now, deadline=now + timeout_s, timeout_ms=round(timeout_s * 1000))

    @staticmethod
    def _deadline_exceeded(
        url: str, attempts: int, failure: OutboundError | None
    ) -> DeadlineExceeded:
        if failure is None:
            return DeadlineExceeded(f"Deadline passed before calling {url}", url=url, attempts=0)
        return DeadlineExceeded(
            f"Deadline leaves no time to retry after {attempts} attempt(s); "
            f"last error: {failure.message}",
            status=failure.status,
            body_excerpt=failure.body_excerpt,
            url=failure.url or url,
            attempts=attempts,
        )

    def _try(
        self,
        slot: _Slot,
        connection: ConnectionConfig,
        request: HttpRequest,
        destination: Destination,
        budget: _Budget,
    ) -> HttpResponse:
        """One try: the request with its redirects, plus one token refresh on a 401.

        Header precedence: connection defaults, then the request's own, then authentication,
        which the connection manages.
        """
        auth = connection.auth
        headers = HTTPHeaderDict({"User-Agent": USER_AGENT})
        headers.update(connection.headers)
        headers.update(request.headers)
        credentials = static_headers(auth)
        headers.update(credentials)
        sent = frozenset({"authorization", *(name.lower() for name in credentials)})
        # The client frames the body (a Content-Length): framing headers from the connection
        # or the request would let a body be read as a second request on the same kept-alive
        # connection, and its answer reach the next call. A Host of their own would send
        # the credentials to another site on a server that routes by Host (a shared host,
        # a CDN): the Host is always the URL's.
        for header in _CLIENT_HEADERS:
            headers.discard(header)
        body = _encode_body(request, headers)
        method = request.method.upper()
        if auth.type != OAUTH2_CLIENT_CREDENTIALS:
            return self._follow(slot.pool, method, destination, headers, body, budget, sent)
        token, fresh = self._token(slot, connection, budget, stale=None)
        headers["Authorization"] = f"Bearer {token}"
        response = self._follow(slot.pool, method, destination, headers, body, budget, sent)
        if response.status != 401 or fresh:
            return response
        # The cached token was revoked or expired early: fetch another and try once more.
        token, _ = self._token(slot, connection, budget, stale=token)
        headers["Authorization"] = f"Bearer {token}"
        return self._follow(slot.pool, method, destination, headers, body, budget, sent)

    def _token(
        self, slot: _Slot, connection: ConnectionConfig, budget: _Budget, stale: str | None
    ) -> tuple[str, bool]:
        """A bearer token and whether it was fetched just now.

        `stale` is a token the API rejected: it is not reused, but a newer one that another
        thread fetched meanwhile is.
        """
        auth = connection.auth
        with slot.token_lock:
            cached = slot.token
            if cached is not None and cached.value != stale and cached.expires_at > self._clock():
                return cached.value, False
            slot.token = None
            token_url = urlunsplit(check_url(auth.token_url))
            destination = _destination(token_url)
            headers = HTTPHeaderDict(
                {
                    "User-Agent": USER_AGENT,
                    "Accept": "application/json",
                    "Content-Type": "application/x-www-form-urlencoded",
                }
            )
            # Redirects are not followed: they would carry the client secret elsewhere.
            response = self._exchange(
                slot.pool, "POST", destination, headers, token_form(auth), budget
            )
            if not 200 <= response.status < 300:
                raise OutboundError(
                    f"Token request to {token_url} failed with HTTP {response.status}",
                    retriable=response.status in RETRIABLE_STATUSES,
                    status=response.status,
                    body_excerpt=excerpt(response.body, connection_secrets(connection)),
                    url=token_url,
                )
            slot.token = parse_token_response(response, self._clock())
            return slot.token.value, True

    def _follow(
        self,
        pool: GuardedPool,
        method: str,
        destination: Destination,
        headers: HTTPHeaderDict,
        body: bytes | None,
        budget: _Budget,
        credentials: frozenset[str],
    ) -> HttpResponse:
        """Send, following redirects here so every hop goes through the guarded pools.

        303 (and 301/302 after a POST, as browsers do) become a GET without body; 307/308
        keep method and body. The first hop is on the connection's origin (send checked
        it); once a redirect leaves that origin (another scheme, host or port, even the
        upgrade from http to https) only the safe-list headers go on: no Authorization, API
        key, cookie or secret header, for the rest of the chain.
        """
        home = destination.origin
        hops = 0
        while True:
            response = self._exchange(pool, method, destination, headers, body, budget)
            location = response.headers.get("location")
            if response.status not in _REDIRECT_STATUSES or not location:
                return response
            url = destination.url
            if hops == MAX_REDIRECTS:
                raise OutboundError(
                    f"Too many redirects (more than {MAX_REDIRECTS}); the last was from {url}",
                    status=response.status,
                    url=url,
                )
            destination = _destination(urlunsplit(check_url(urljoin(url, location))))
            if hops == 0:
                headers = headers.copy()  # the caller's stay as they were
            if (response.status == 303 and method != "HEAD") or (
                response.status in (301, 302) and method == "POST"
            ):
                method, body = "GET", None
                headers.discard("Content-Type")
                headers.discard("Content-Length")
            if destination.origin != home:
                _strip_to_safe_headers(headers, credentials)
            hops += 1

    def _exchange(
        self,
        pool: GuardedPool,
        method: str,
        destination: Destination,
        headers: HTTPHeaderDict,
        body: bytes | None,
        budget: _Budget,
    ) -> HttpResponse:
        """One HTTP round trip within the budget, its body read up to the size limit.

        Each phase may take what is left of the budget: the socket timeout bounds each
        connect and send, every receive ends by the deadline (the status line and headers
        too, however slowly they come), and the body's reader checks it between reads.
        The connection goes back to the pool only when its response was read to the end:
        unread data would corrupt the next request on it.
        """
        url, origin, target = destination
        connection = pool.take(origin)
        sent, raw = False, None
        try:
            connection.set_timeout(self._remaining(url, budget))
            # The server may answer (a 413, say) after closing its side: read the answer.
            with contextlib.suppress(BrokenPipeError):
                connection.request(method, target, body=body, headers=headers)
            sent = True
            connection.set_timeout(self._remaining(url, budget))
            raw = connection.getresponse()
            if 100 <= raw.status < 200:  # http.client reads past 100 Continue only
                raise OutboundError(
                    f"{url} answered {raw.status} {raw.reason} (an interim answer, such as "
                    "Early Hints) where a final answer was expected; the client cannot take "
                    "interim answers",
                    status=raw.status,
                    url=url,
                )
            received = _headers_of(raw)
            data = self._read_body(_decoding(raw, received, method), url, budget)
            if raw.length:  # what its Content-Length promised and the server never sent
                raise http.client.IncompleteRead(data, raw.length)
            if raw.length == 0:  # all of it read: read1, unlike read, leaves that to us
                raw.close()
        except BaseException as error:
            if raw is not None:  # after Connection: close the answer holds the socket
                raw.close()
            connection.close()
            translated = _outbound_error(error, url, budget, sent=sent)
            if translated is error:
                raise
            raise translated from error
        if raw.isclosed():
            pool.give(origin, connection)
        else:
            connection.close()
        return HttpResponse(
            status=raw.status,
            headers=received,
            body=data,
            url=url,
            elapsed_ms=(self._clock() - budget.started) * 1000,
        )

    def _remaining(self, url: str, budget: _Budget) -> float:
        remaining = budget.deadline - self._clock()
        if remaining <= 0:
            raise _timed_out(url, budget)
        return remaining

    def _read_body(self, raw: Readable, url: str, budget: _Budget) -> bytes:
        """Read at most limit + 1 bytes: enough to know the body is too large, never more.

        The deadline is checked between chunks, as a socket timeout only bounds each read;
        each chunk is what has arrived (read1), so a server that sends a byte at a time
        cannot keep one read going past the deadline.
        """
        limit = settings.FLOWSITE_OUTBOUND_MAX_RESPONSE_BYTES
        body = bytearray()
        while chunk := raw.read1(min(_READ_CHUNK_BYTES, limit + 1 - len(body))):
            body += chunk
            if len(body) > limit:
                raise ResponseTooLarge(
                    f"Response from {url} is larger than {limit} bytes "
                    "(FLOWSITE_OUTBOUND_MAX_RESPONSE_BYTES)",
                    status=raw.status,
                    url=url,
                )
            if self._clock() > budget.deadline:
                raise _timed_out(url, budget)
        return bytes(body)


_shared_client: OutboundClient | None = None
_shared_lock = threading.Lock()


def get_client() -> OutboundClient:
    """The process-wide client, created on first use, so all flows share its pools."""
    global _shared_client
    with _shared_lock:
        if _shared_client is None:
            _shared_client = OutboundClient()
        return _shared_client
