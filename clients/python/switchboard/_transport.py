"""What the sync and async clients share: the base URL, how a call becomes
an HTTP/1.1 request, how an answer becomes a result or a typed error, and
the retry schedule. The clients only move the bytes."""

import http.client
import json
import random
import ssl
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .errors import TransportError, Unavailable, api_error

USER_AGENT = "switchboard-python/1.0"
# The largest answer read (a history page of 500 events of 64 KiB is 32 MiB).
MAX_BODY_BYTES = 64 * 1024 * 1024


def new_idempotency_key():
    """A fresh key for one publish: 32 hex digits."""
    return uuid.uuid4().hex


def _printable(text, longest=None):
    return (isinstance(text, str) and all(" " <= c <= "~" for c in text)
            and (longest is None or 0 < len(text) <= longest))


def idempotency_key(given):
    """The key a publish sends: `given`, checked as the server checks it
    (1-64 printable ASCII characters), or a fresh one."""
    if given is None:
        return new_idempotency_key()
    if not _printable(given, 64):
        raise ValueError("idempotency_key must be 1-64 printable ASCII characters")
    return given


@dataclass(frozen=True)
class Endpoint:
    """The server's base URL: http or https, host, port and a path prefix
    (a node behind a proxy at https://example.com/switchboard)."""

    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"url must be http(s)://host[:port][/prefix], not {url!r}")
        port = u.port or (443 if u.scheme == "https" else 80)
        return cls(u.scheme, u.hostname, port, u.path.rstrip("/"))

    @property
    def host_header(self):
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def target(self, path, query=None):
        q = {k: v for k, v in (query or {}).items() if v is not None}
        return self.prefix + path + ("?" + urllib.parse.urlencode(q) if q else "")


@dataclass
class Call:
    """One API request and how to read its answer. `retry_when` looks at a
    200 answer and says whether it is worth sending again (a broadcast where
    a channel's owner was unavailable: the same key keeps the others single)."""

    method: str
    path: str
    query: Optional[dict] = None
    body: Any = None
    idempotency_key: Optional[str] = None
    result: Callable[[Any], Any] = lambda j: j
    retry_when: Callable[[Any], bool] = lambda j: False

    def headers(self, endpoint, bearer, payload):
        h = {"Host": endpoint.host_header, "User-Agent": USER_AGENT,
             "Accept": "application/json", "Content-Length": str(len(payload))}
        if bearer:
            h["Authorization"] = f"Bearer {bearer}"
        if self.body is not None:
            h["Content-Type"] = "application/json"
        if self.idempotency_key:
            h["Idempotency-Key"] = self.idempotency_key
        return h

    def payload(self):
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":")).encode()


def decode(status, body):
    """The answer's JSON, or the typed error for an error status."""
    text = body.decode("utf-8", "replace")
    try:
        j = json.loads(text) if text.strip() else None
    except ValueError:
        j = None
    if 200 <= status < 300:
        return j
    if isinstance(j, dict):
        raise api_error(status, j.get("error", f"http_{status}"), j.get("message", ""), j)
    raise api_error(status, f"http_{status}", text[:200], None)


@dataclass(frozen=True)
class Options:
    """A client's settings (docs/backends.md has the table)."""

    endpoint: Endpoint
    bearer: str
    timeout: float
    policy: "RetryPolicy"
    pool_size: int
    ssl_context: Any

    @classmethod
    def of(cls, url, bearer, *, timeout=10.0, retries=4, backoff=0.1, max_backoff=2.0,
           pool_size=8, ssl_context=None):
        if not _printable(bearer or ""):
            raise ValueError("the API key or admin token must be printable ASCII")
        return cls(Endpoint.parse(url), bearer, timeout,
                   RetryPolicy(retries, backoff, max_backoff), pool_size, ssl_context)

    def tls(self):
        return self.ssl_context or ssl.create_default_context()


@dataclass
class RetryPolicy:
    """`retries` more attempts after the first, on connection errors,
    timeouts and 503, waiting backoff, 2*backoff, ... (at most max_backoff),
    each with jitter so that many backends do not retry in step."""

    retries: int = 4
    backoff: float = 0.1
    max_backoff: float = 2.0
    _rand: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self):
        if self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("retries, backoff and max_backoff must not be negative")

    def delays(self):
        """The wait before each attempt: 0 for the first."""
        yield 0.0
        for i in range(self.retries):
            d = min(self.max_backoff, self.backoff * (2 ** i))
            yield d * (0.5 + self._rand.random() / 2)


class BadAnswer(Exception):
    """An answer that is not HTTP/1.1 as expected (or too large)."""


class Outcome:
    """Bookkeeping of one call's attempts, the same for both clients: what
    to do with each answer or failure, and what to raise at the end."""

    # A call failed without an answer (refused, reset, timed out, garbled).
    RETRYABLE_ERRORS = (OSError, EOFError, http.client.HTTPException, BadAnswer)

    def __init__(self, call, policy):
        self.call = call
        self.policy = policy
        self.attempts = 0
        self.failure = None
        self.last_result = None
        self.has_result = False
        self.done = False

    def delays(self):
        """The wait before each attempt, until one is done or none is left."""
        for delay in self.policy.delays():
            if self.done:
                return
            yield delay

    def answered(self, status, body):
        """Takes an answer: an error status other than 503 is raised."""
        self.attempts += 1
        try:
            j = decode(status, body)
        except Unavailable as e:
            self.failure = e
            return
        self.last_result, self.has_result, self.failure = self.call.result(j), True, None
        self.done = not self.call.retry_when(j)

    def failed(self, exc):
        self.attempts += 1
        self.failure = exc

    def result(self):
        """The last answer's result (a broadcast still partly failed after
        every retry is returned as it is); else the last failure."""
        if self.has_result:
            return self.last_result
        if isinstance(self.failure, Unavailable):
            raise self.failure
        raise TransportError(f"{self.call.method} {self.call.path}: no answer after "
                             f"{self.attempts} attempt(s): {self.failure!r}",
                             self.attempts) from self.failure
