"""The asyncio client: HTTP/1.1 over asyncio streams (standard library
only), connections kept alive in a small pool. An AsyncClient belongs to the
event loop that uses it; used from another loop (asyncio.run called again,
asgiref's async_to_sync), it drops the connections of the old one."""

import asyncio

from ._api import AdminMethods, ApiMethods
from ._transport import MAX_BODY_BYTES, BadAnswer, Options, Outcome

_MAX_HEADERS = 100
_MAX_LINE = 16 * 1024


class _Conn:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    def close(self):
        try:
            self.writer.close()
        except RuntimeError:  # its loop is closed: the socket goes with the transport
            pass


async def _read_line(reader):
    line = await reader.readline()
    if not line.endswith(b"\n"):
        raise EOFError("the connection closed in the middle of an answer")
    if len(line) > _MAX_LINE:
        raise BadAnswer("header line too long")
    return line.rstrip(b"\r\n").decode("latin-1")


async def _read_chunked(reader):
    body = bytearray()
    while True:
        size = int((await _read_line(reader)).split(";")[0], 16)
        if size == 0:
            while await _read_line(reader):
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY_BYTES:
            raise BadAnswer(f"answer larger than {MAX_BODY_BYTES} bytes")
        body += await reader.readexactly(size)
        await _read_line(reader)


async def _read_answer(reader):
    """(status, body, keep_alive) of one HTTP/1.1 answer."""
    parts = (await _read_line(reader)).split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise BadAnswer(f"not an HTTP/1.1 status line: {' '.join(parts)[:80]!r}")
    status = int(parts[1])
    headers = {}
    for _ in range(_MAX_HEADERS + 1):
        line = await _read_line(reader)
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise BadAnswer("too many header lines")
    keep_alive = headers.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, await _read_chunked(reader), keep_alive
    if "content-length" in headers:
        n = int(headers["content-length"])
        if n > MAX_BODY_BYTES:
            raise BadAnswer(f"answer larger than {MAX_BODY_BYTES} bytes")
        return status, await reader.readexactly(n), keep_alive
    body = await reader.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise BadAnswer(f"answer larger than {MAX_BODY_BYTES} bytes")
    return status, body, False


class _Transport:
    def __init__(self, options):
        self.options = options
        self._idle = []
        self._loop = None

    async def _connect(self):
        e = self.options.endpoint
        tls = self.options.tls() if e.scheme == "https" else None
        reader, writer = await asyncio.open_connection(e.host, e.port, ssl=tls,
                                                       limit=_MAX_LINE * 4)
        return _Conn(reader, writer)

    def _take(self):
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self.close()
            self._loop = loop
        while self._idle:
            conn = self._idle.pop()
            if not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    def _give_back(self, conn):
        if len(self._idle) < self.options.pool_size:
            self._idle.append(conn)
        else:
            conn.close()

    async def _exchange(self, conn, call):
        payload = call.payload()
        e = self.options.endpoint
        head = f"{call.method} {e.target(call.path, call.query)} HTTP/1.1\r\n"
        for k, v in call.headers(e, self.options.bearer, payload).items():
            head += f"{k}: {v}\r\n"
        conn.writer.write(head.encode("latin-1") + b"\r\n" + payload)
        await conn.writer.drain()
        try:
            return await _read_answer(conn.reader)
        except ValueError as e:  # a number that is none, a line over the stream's limit
            raise BadAnswer(str(e)) from e

    async def _attempt(self, call):
        """One attempt within the timeout; a kept-alive connection the server
        has closed meanwhile is replaced once without counting as an attempt."""
        conn = self._take()
        reused = conn is not None
        try:
            async with asyncio.timeout(self.options.timeout):
                if conn is None:
                    conn = await self._connect()
                try:
                    status, body, keep = await self._exchange(conn, call)
                except (ConnectionError, EOFError):
                    if not reused:
                        raise
                    conn.close()
                    conn = await self._connect()
                    status, body, keep = await self._exchange(conn, call)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if keep:
            self._give_back(conn)
        else:
            conn.close()
        return status, body

    async def run(self, call):
        outcome = Outcome(call, self.options.policy)
        for delay in outcome.delays():
            await asyncio.sleep(delay)
            try:
                outcome.answered(*await self._attempt(call))
            except Outcome.RETRYABLE_ERRORS as e:
                outcome.failed(e)
        return outcome.result()

    def close(self):
        idle, self._idle = self._idle, []
        for c in idle:
            c.close()


class _Async:
    def __init__(self, url, bearer, **options):
        self._transport = _Transport(Options.of(url, bearer, **options))

    async def _run(self, call):
        return await self._transport.run(call)

    async def close(self):
        """Closes the idle connections (the client stays usable)."""
        self._transport.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


class AsyncClient(_Async, ApiMethods):
    """AsyncClient("http://127.0.0.1:8000", api_key): the server API for
    asyncio code; every method is a coroutine. Options as for Client."""

    def __init__(self, url, api_key, **options):
        super().__init__(url, api_key, **options)


class AsyncAdminClient(_Async, AdminMethods):
    """The admin interface for asyncio code."""

    def __init__(self, url, token, **options):
        super().__init__(url, token, **options)
