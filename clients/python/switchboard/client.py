"""The synchronous client: http.client connections kept alive in a small
pool, so one Client can be shared by every thread of a Django process."""

import http.client
import threading
import time

from ._api import AdminMethods, ApiMethods
from ._transport import MAX_BODY_BYTES, BadAnswer, Options, Outcome


class _Transport:
    def __init__(self, options):
        self.options = options
        self._idle = []
        self._lock = threading.Lock()

    def _connect(self):
        o = self.options
        e = o.endpoint
        if e.scheme == "https":
            return http.client.HTTPSConnection(e.host, e.port, timeout=o.timeout,
                                               context=o.tls())
        return http.client.HTTPConnection(e.host, e.port, timeout=o.timeout)

    def _take(self):
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._connect(), False

    def _give_back(self, conn):
        with self._lock:
            if len(self._idle) < self.options.pool_size:
                self._idle.append(conn)
                return
        conn.close()

    def _exchange(self, conn, call):
        payload = call.payload()
        e = self.options.endpoint
        conn.request(call.method, e.target(call.path, call.query), body=payload,
                     headers=call.headers(e, self.options.bearer, payload))
        resp = conn.getresponse()
        body = resp.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise BadAnswer(f"answer larger than {MAX_BODY_BYTES} bytes")
        return resp.status, body, resp.will_close

    def _attempt(self, call):
        """One attempt; a kept-alive connection the server has closed
        meanwhile is replaced once without counting as an attempt."""
        conn, reused = self._take()
        try:
            try:
                status, body, closing = self._exchange(conn, call)
            except ConnectionError:  # RemoteDisconnected is one
                if not reused:
                    raise
                conn.close()
                conn = self._connect()
                status, body, closing = self._exchange(conn, call)
        except BaseException:
            conn.close()
            raise
        if closing:
            conn.close()
        else:
            self._give_back(conn)
        return status, body

    def run(self, call):
        outcome = Outcome(call, self.options.policy)
        for delay in outcome.delays():
            time.sleep(delay)
            try:
                outcome.answered(*self._attempt(call))
            except Outcome.RETRYABLE_ERRORS as e:
                outcome.failed(e)
        return outcome.result()

    def close(self):
        with self._lock:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()


class _Sync:
    def __init__(self, url, bearer, **options):
        self._transport = _Transport(Options.of(url, bearer, **options))

    def _run(self, call):
        return self._transport.run(call)

    def close(self):
        """Closes the idle connections (the client stays usable)."""
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Client(_Sync, ApiMethods):
    """Client("http://127.0.0.1:8000", api_key): the server API, blocking.

    timeout: seconds for each attempt (connect, send, answer). retries: more
    attempts after the first on connection errors, timeouts and 503, with
    exponential backoff from `backoff` up to `max_backoff` seconds. Thread-safe:
    share one per process."""

    def __init__(self, url, api_key, **options):
        super().__init__(url, api_key, **options)


class AdminClient(_Sync, AdminMethods):
    """AdminClient("http://127.0.0.1:8100", admin_token): the admin interface
    (docs/admin.md), what sbctl asks."""

    def __init__(self, url, token, **options):
        super().__init__(url, token, **options)
