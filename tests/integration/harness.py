#!/usr/bin/python3
"""Shared harness for the Switchboard integration tests.

Starts the real server binary on loopback, mints HS256 JWTs independently of
the server, and wraps WebSocket connections (the `websockets` 10.x asyncio
client, plus a raw-socket client for wire-level tests).

Run a test file as

    /usr/bin/python3 tests/integration/test_x.py [/path/to/switchboard] [unittest args]

The binary comes from argv[1] (if it looks like a path), else the environment
variable SWITCHBOARD_BIN, else <repo>/build/switchboard.
"""

import asyncio
import atexit
import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import websockets
import websockets.exceptions

# <repo>/build/switchboard, found from this file's place (<repo>/tests/integration/).
DEFAULT_BIN = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "build", "switchboard")
SECRET = "integration-test-secret-0123456789"
API_KEY = "integration-test-api-key-0123456789"  # 34 bytes: keys under 32 are refused
NODE_ID = "itest-node-1"
ALLOWED_ORIGIN = "http://ok.example"
HOST = "127.0.0.1"

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LISTEN_RE = re.compile(r"listening.*port=(\d+)")
LISTEN_RE_ALT = re.compile(r"port=(\d+).*listening")
ADMIN_RE = re.compile(r"admin_open.*port=(\d+)")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def binary_path():
    return os.path.abspath(os.environ.get("SWITCHBOARD_BIN") or DEFAULT_BIN)


# --------------------------------------------------------------------------
# Unique names
# --------------------------------------------------------------------------

_counter = itertools.count(1)
_run_tag = uuid.uuid4().hex[:6]


def unique_room(prefix="room"):
    """A room name unique to this process (valid channel characters only)."""
    return f"{prefix}-{_run_tag}-{next(_counter)}"


def unique_uid():
    """A fresh numeric user id, so per-user limits never leak between tests."""
    return 100000 + (os.getpid() % 1000) * 1000 + next(_counter)


def unique_suid(prefix="u"):
    """A fresh string user id."""
    return f"{prefix}-{_run_tag}-{next(_counter)}"


# --------------------------------------------------------------------------
# JWT minting (HS256, base64url without padding)
# --------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(claims: dict, secret: str = SECRET, header: dict = None) -> str:
    """Signs `claims` exactly as given (no defaults added)."""
    if header is None:
        header = {"alg": "HS256", "typ": "JWT"}
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    p = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{h}.{p}".encode("ascii")
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{h}.{p}.{b64url(sig)}"


_OMIT = object()


def token(user_id=_OMIT, *, name=None, role=None, channels=None, ttl=3600,
          secret=SECRET, token_type=_OMIT, sub=_OMIT, exp=_OMIT, **extra):
    """A valid access token for `user_id` unless told otherwise.

    ttl: seconds until exp (negative -> expired). exp=None omits exp.
    """
    now = int(time.time())
    claims = {}
    if user_id is not _OMIT:
        claims["user_id"] = user_id
    if sub is not _OMIT:
        claims["sub"] = sub
    if exp is _OMIT:
        claims["exp"] = now + ttl
    elif exp is not None:
        claims["exp"] = exp
    claims["iat"] = now
    if token_type is _OMIT:
        claims["token_type"] = "access"
    elif token_type is not None:
        claims["token_type"] = token_type
    if name is not None:
        claims["name"] = name
    if role is not None:
        claims["role"] = role
    if channels is not None:
        claims["channels"] = list(channels)
    claims.update(extra)
    return mint(claims, secret=secret)


# --------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------

_live_servers = []


def _kill_leftovers():
    for s in list(_live_servers):
        try:
            s.kill()
        except Exception:
            pass


atexit.register(_kill_leftovers)


def base_config():
    return {
        "node": {"id": NODE_ID, "actor_threads": 2},
        "http": {"host": HOST, "port": 0, "threads": 2},
        "auth": {"jwt_secret": SECRET, "api_keys": [API_KEY]},
        "log": {"level": "info", "format": "plain"},
    }


def clean_env(extra=None):
    # Everything but SWITCHBOARD_* passes on, so the sanitizer build's servers
    # get ASAN_OPTIONS and UBSAN_OPTIONS (tools/sanitizer-tests.sh).
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    # glibc writes its fatal errors (heap corruption) to the terminal, not
    # stderr: this puts them in the server's log, where a failure shows it.
    env["LIBC_FATAL_STDERR_"] = "1"
    if extra:
        env.update(extra)
    return env


class ServerError(AssertionError):
    pass


class Server:
    """One switchboard process with its own temp dir, config file and log."""

    def __init__(self, overrides=(), config=None, env=None, name="server",
                 config_text=None, add_port_override=True):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix=f"sb-itest-{name}-")
        self.data_dir = os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.config_path = os.path.join(self.tmp, "config.json")
        if config_text is None:
            cfg = base_config() if config is None else config
            config_text = "// written by the integration harness\n" + json.dumps(cfg, indent=2)
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(self.tmp, "server.log")
        self.args = [binary_path(), "--config", self.config_path]
        if add_port_override:
            self.args += ["--http.port=0", f"--node.data_dir={self.data_dir}"]
        self.args += list(overrides)
        self.env = clean_env(env)
        self.proc = None
        self.port = None
        self.admin_port = None  # from the log's admin_open, when the admin interface is on
        self._log_file = None

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout=START_TIMEOUT):
        if not os.path.exists(self.args[0]):
            raise ServerError(f"server binary not found: {self.args[0]}")
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=self.tmp)
        _live_servers.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            m = LISTEN_RE.search(text) or LISTEN_RE_ALT.search(text)
            if m:
                self.port = int(m.group(1))
                admin = ADMIN_RE.search(text)
                self.admin_port = int(admin.group(1)) if admin else None
                return self
            rc = self.proc.poll()
            if rc is not None:
                _live_servers.remove(self)
                raise ServerError(
                    f"server {self.name} exited with {rc} before listening\n"
                    f"command: {' '.join(self.args)}\n--- server output ---\n{self.log()}")
            time.sleep(0.02)
        self.kill()
        raise ServerError(f"server {self.name} did not log 'listening ... port=N' within "
                          f"{timeout}s\n--- server output ---\n{self.log()}")

    def run_to_exit(self, timeout=10):
        """Runs the binary expecting it to exit by itself (bad config)."""
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=self.tmp)
        _live_servers.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                _live_servers.remove(self)
                self._log_file.close()
                return rc
            if LISTEN_RE.search(self.log()) or LISTEN_RE_ALT.search(self.log()):
                # It started serving: it is not going to exit by itself.
                time.sleep(0.2)
                if self.proc.poll() is None:
                    self.kill()
                    return None
            time.sleep(0.02)
        self.kill()
        return None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait; returns the exit code (None if it had to be killed)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait_exit(timeout) is None:
                return None
        if self in _live_servers:
            _live_servers.remove(self)
        if self._log_file:
            self._log_file.close()
        return self.proc.returncode

    def wait_exit(self, timeout):
        """Waits for the process to exit; returns its exit code, or None after
        killing it when it did not exit within `timeout` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self in _live_servers:
            _live_servers.remove(self)
        if self._log_file and not self._log_file.closed:
            self._log_file.close()

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- info --------------------------------------------------------------

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=None):
        # SB_LOG_LINES: how much of a failed test's server logs to show.
        lines = lines or int(os.environ.get("SB_LOG_LINES", "80"))
        text = self.log().splitlines()
        return "\n".join(text[-lines:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def url(self, path, query=None):
        u = f"ws://{HOST}:{self.port}{path}"
        if query:
            u += "?" + query
        return u


# --------------------------------------------------------------------------
# WebSocket client wrapper (websockets asyncio API)
# --------------------------------------------------------------------------

def _matches(frame, type_, pred, channel):
    if type_ is not None:
        types = (type_,) if isinstance(type_, str) else tuple(type_)
        if frame.get("type") not in types:
            return False
    if channel is not None and frame.get("channel") != channel:
        return False
    if pred is not None and not pred(frame):
        return False
    return True


class Closed(Exception):
    def __init__(self, code, reason=""):
        super().__init__(f"connection closed with code {code} {reason!r}")
        self.code = code
        self.reason = reason


def close_code_of(exc):
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is not None:
        return rcvd.code, rcvd.reason
    code = getattr(exc, "code", None)
    return (code if code is not None else 1006), getattr(exc, "reason", "")


class Client:
    """A connection that buffers frames, so waiting for one type of frame
    keeps the others for later."""

    def __init__(self, ws, label=""):
        self.ws = ws
        self.label = label
        self.buf = []
        self.established = None

    async def send(self, obj):
        if isinstance(obj, (dict, list)):
            obj = json.dumps(obj, ensure_ascii=False)
        await self.ws.send(obj)

    async def _recv_one(self, timeout):
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.exceptions.ConnectionClosed as e:
            code, reason = close_code_of(e)
            raise Closed(code, reason)
        if isinstance(raw, bytes):
            raise AssertionError(f"{self.label}: server sent a binary frame: {raw[:100]!r}")
        try:
            frame = json.loads(raw)
        except ValueError:
            raise AssertionError(f"{self.label}: server sent non-JSON text: {raw[:200]!r}")
        if not isinstance(frame, dict):
            raise AssertionError(f"{self.label}: server sent a non-object frame: {raw[:200]!r}")
        return frame

    async def recv(self, type=None, timeout=5.0, pred=None, channel=None):
        """The first frame (buffered or new) matching type/channel/pred;
        other frames stay buffered."""
        for i, f in enumerate(self.buf):
            if _matches(f, type, pred, channel):
                return self.buf.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.label}: timed out after {timeout}s waiting for a "
                    f"{type or 'any'} frame; buffered others: {self._buf_summary()}")
            try:
                frame = await self._recv_one(remaining)
            except asyncio.TimeoutError:
                continue
            except Closed as c:
                raise AssertionError(
                    f"{self.label}: connection closed (code {c.code} {c.reason!r}) while "
                    f"waiting for a {type or 'any'} frame; buffered: {self._buf_summary()}")
            if _matches(frame, type, pred, channel):
                return frame
            self.buf.append(frame)

    async def recv_n(self, n, type=None, timeout=5.0, pred=None, channel=None):
        out = []
        deadline = time.monotonic() + timeout
        for _ in range(n):
            out.append(await self.recv(type, max(0.01, deadline - time.monotonic()),
                                       pred, channel))
        return out

    async def collect(self, duration):
        """Reads for `duration` seconds, buffering everything; returns the buffer."""
        deadline = time.monotonic() + duration
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self.buf.append(await self._recv_one(remaining))
            except asyncio.TimeoutError:
                break
            except Closed:
                break
        return self.buf

    async def expect_none(self, type=None, duration=0.5, pred=None, channel=None):
        """Asserts that no frame matching arrives within `duration` (and none is buffered)."""
        await self.collect(duration)
        bad = [f for f in self.buf if _matches(f, type, pred, channel)]
        if bad:
            raise AssertionError(f"{self.label}: unexpected frame(s): {bad[:3]}")

    def take(self, type=None, pred=None, channel=None):
        """Removes and returns every buffered frame matching."""
        keep, out = [], []
        for f in self.buf:
            (out if _matches(f, type, pred, channel) else keep).append(f)
        self.buf = keep
        return out

    async def expect_close(self, code, timeout=5.0):
        """Reads until the server closes; asserts the close code. Returns the
        frames received before the close."""
        codes = (code,) if isinstance(code, int) else tuple(code)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.label}: expected close {codes}, but the connection is still "
                    f"open after {timeout}s; frames: {self._buf_summary()}")
            try:
                self.buf.append(await self._recv_one(remaining))
            except asyncio.TimeoutError:
                continue
            except Closed as c:
                if c.code not in codes:
                    raise AssertionError(
                        f"{self.label}: expected close code {codes}, got {c.code} "
                        f"{c.reason!r}; frames before close: {self._buf_summary()}")
                return self.buf

    def _buf_summary(self, n=8):
        parts = [json.dumps(f)[:200] for f in self.buf[-n:]]
        return f"[{len(self.buf)} frames] " + " | ".join(parts)

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 3)
        except Exception:
            pass


async def open_ws(server, path, tok=None, *, via="query", query=None, headers=None,
                  origin=None, max_size=2 ** 24, label=None, open_timeout=5,
                  compression=None, **kw):
    """Opens a WebSocket to `server`. `via`: "query" (?token=) or "header"
    (Authorization: Bearer). Returns a Client (no frame read yet)."""
    q = []
    extra_headers = dict(headers or {})
    if tok is not None:
        if via == "query":
            q.append("token=" + tok)
        else:
            extra_headers["Authorization"] = "Bearer " + tok
    if query:
        q.append(query)
    uri = server.url(path, "&".join(q) if q else None)
    ws = await websockets.connect(uri, extra_headers=extra_headers, origin=origin,
                                  max_size=max_size, ping_interval=None,
                                  open_timeout=open_timeout, close_timeout=2,
                                  compression=compression, **kw)
    return Client(ws, label or path)


# --------------------------------------------------------------------------
# Raw WebSocket client (blocking sockets), for wire-level tests
# --------------------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class RawWS:
    def __init__(self, port, path, extra_headers="", rcvbuf=None, timeout=5.0,
                 handshake=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        self.port = port
        self.rbuf = b""
        self.status = None
        self.response_head = b""
        if handshake:
            self.handshake(path, extra_headers)

    def handshake(self, path, extra_headers=""):
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"{extra_headers}\r\n")
        self.sock.sendall(req.encode())
        while b"\r\n\r\n" not in self.rbuf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"server closed during handshake; got {self.rbuf!r}")
            self.rbuf += chunk
        head, self.rbuf = self.rbuf.split(b"\r\n\r\n", 1)
        self.response_head = head
        self.status = int(head.split(b" ", 2)[1])
        if self.status == 101:
            expected = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            if expected.encode().lower() not in head.lower():
                raise AssertionError(f"bad Sec-WebSocket-Accept in {head!r}")
        return self.status

    def _read_exact(self, n, deadline):
        while len(self.rbuf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("timed out")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(max(65536, n - len(self.rbuf)))
            if not chunk:
                raise EOFError("server closed the TCP connection")
            self.rbuf += chunk
        out, self.rbuf = self.rbuf[:n], self.rbuf[n:]
        return out

    def recv_frame(self, timeout=5.0):
        """One frame: (fin, opcode, payload). Raises EOFError / socket.timeout."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._read_exact(2, deadline)
        fin, op = bool(b0 & 0x80), b0 & 0x0F
        masked, ln = bool(b1 & 0x80), b1 & 0x7F
        if ln == 126:
            ln = struct.unpack("!H", self._read_exact(2, deadline))[0]
        elif ln == 127:
            ln = struct.unpack("!Q", self._read_exact(8, deadline))[0]
        mask = self._read_exact(4, deadline) if masked else None
        payload = self._read_exact(ln, deadline)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return fin, op, payload

    def recv_message(self, timeout=5.0, answer_pings=True):
        """A whole data message (op, payload) or a close frame (OP_CLOSE, payload);
        pings are answered (or ignored) and skipped."""
        deadline = time.monotonic() + timeout
        parts, first_op = [], None
        while True:
            fin, op, payload = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if op == OP_PING:
                if answer_pings:
                    self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                return OP_CLOSE, payload
            if op != OP_CONT:
                first_op = op
            parts.append(payload)
            if fin:
                return first_op, b"".join(parts)

    def send_frame(self, op, payload=b"", fin=True, masked=True, length_override=None):
        if isinstance(payload, str):
            payload = payload.encode()
        b0 = (0x80 if fin else 0) | op
        ln = len(payload) if length_override is None else length_override
        mbit = 0x80 if masked else 0
        if ln < 126:
            head = struct.pack("!BB", b0, mbit | ln)
        elif ln < 65536:
            head = struct.pack("!BBH", b0, mbit | 126, ln)
        else:
            head = struct.pack("!BBQ", b0, mbit | 127, ln)
        if masked:
            mask = os.urandom(4)
            head += mask
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + payload)

    def send_json(self, obj):
        self.send_frame(OP_TEXT, json.dumps(obj, ensure_ascii=False).encode())

    def recv_json(self, timeout=5.0, answer_pings=True):
        op, payload = self.recv_message(timeout, answer_pings)
        if op == OP_CLOSE:
            raise Closed(close_code_from_payload(payload))
        return json.loads(payload)

    def wait_closed(self, timeout, answer_pings=False):
        """Reads until a close frame or EOF. Returns ('close', code) or ('eof', None)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ("open", None)
            try:
                fin, op, payload = self.recv_frame(remaining)
            except EOFError:
                return ("eof", None)
            except (socket.timeout, TimeoutError):
                return ("open", None)
            except ConnectionResetError:
                return ("eof", None)
            if op == OP_CLOSE:
                return ("close", close_code_from_payload(payload))
            if op == OP_PING and answer_pings:
                self.send_frame(OP_PONG, payload)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def close_code_from_payload(payload):
    if len(payload) >= 2:
        return struct.unpack("!H", payload[:2])[0]
    return 1005


def raw_http(port, data: bytes, timeout=5.0):
    """Sends raw bytes; returns (response_bytes, closed) after the server answers
    and/or closes, or the timeout passes."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    got = b""
    closed = False
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
            # A complete response head with a body length we can check: done.
            if b"\r\n\r\n" in got:
                head, body = got.split(b"\r\n\r\n", 1)
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
    finally:
        s.close()
    return got, closed


def http_status(response: bytes):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------
# unittest base class
# --------------------------------------------------------------------------

class SBTestCase(unittest.IsolatedAsyncioTestCase):
    """Base class: one server per test class (configured through
    `server_overrides` / `server_config`), connection helpers, and the server's
    log printed when a test fails."""

    server = None
    server_overrides = ()
    server_config = None
    start_class_server = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = None
        if cls.start_class_server:
            srv = Server(overrides=cls.server_overrides, config=cls.server_config,
                         name=cls.__name__)
            srv.start()
            cls.server = srv

    @classmethod
    def tearDownClass(cls):
        srv, cls.server = cls.server, None
        if srv is not None:
            rc = srv.stop()
            log = srv.log_tail(60)
            srv.cleanup()
            if rc != 0:
                raise AssertionError(
                    f"{cls.__name__}: server did not exit 0 on SIGTERM within "
                    f"{STOP_TIMEOUT}s (exit code {rc})\n--- server output (tail) ---\n{log}")
        super().tearDownClass()

    async def asyncSetUp(self):
        # IsolatedAsyncioTestCase runs the loop in debug mode, which slows it
        # down and prints noise about the (deliberate) blocking calls.
        asyncio.get_running_loop().set_debug(False)
        self._clients = []
        self._raw = []
        self._own_servers = getattr(self, "_own_servers", [])

    async def asyncTearDown(self):
        for c in self._clients:
            await c.close()
        for r in self._raw:
            r.close()

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            self._dump_logs()
        for srv in getattr(self, "_own_servers", []):
            srv.cleanup()
        return out

    def _dump_logs(self):
        servers = []
        if type(self).server is not None:
            servers.append(type(self).server)
        servers += getattr(self, "_own_servers", [])
        for s in servers:
            sys.stderr.write(f"\n----- server log of {s.name} (tail) for {self.id()} -----\n")
            sys.stderr.write(s.log_tail() + "\n")
            sys.stderr.write("----- end of server log -----\n")
        sys.stderr.flush()

    # -- servers owned by one test -----------------------------------------

    def start_server(self, overrides=(), config=None, env=None, name=None):
        if not hasattr(self, "_own_servers"):
            self._own_servers = []
        srv = Server(overrides=overrides, config=config, env=env,
                     name=name or self._testMethodName)
        self._own_servers.append(srv)
        self.addCleanup(srv.kill)
        srv.start()
        return srv

    # -- connections ---------------------------------------------------------

    async def connect(self, path, tok=None, server=None, **kw):
        """Opens a connection (handshake must succeed); nothing is read."""
        srv = server or self.server
        c = await open_ws(srv, path, tok, **kw)
        self._clients.append(c)
        return c

    async def connect_ok(self, path, tok=None, server=None, **kw):
        """Opens a connection and asserts that the first frame is
        connection_established; returns the client (with .established)."""
        c = await self.connect(path, tok, server=server, **kw)
        first = await c.recv(timeout=5)
        self.assertEqual(first.get("type"), "connection_established",
                         f"first frame on {path} must be connection_established, got {first}")
        c.established = first
        return c

    async def join(self, room, uid, *, name=None, role=None, extra_channels=(), server=None,
                   label=None):
        """A member of chat:{room} (token grants exactly that room)."""
        tok = token(uid, name=name, role=role,
                    channels=[f"chat:{room}", *extra_channels])
        return await self.connect_ok(f"/ws/chat/{room}/", tok, server=server,
                                     label=label or f"{uid}@{room}")

    async def expect_refused(self, path, tok, code, server=None, **kw):
        """Handshake succeeds, then the server closes with `code` without
        sending connection_established."""
        try:
            c = await self.connect(path, tok, server=server, **kw)
        except websockets.exceptions.InvalidStatusCode as e:
            self.fail(f"{path}: handshake refused with HTTP {e.status_code}; expected the "
                      f"socket to be accepted and closed with {code}")
        frames = await c.expect_close(code, timeout=5)
        established = [f for f in frames if f.get("type") == "connection_established"]
        self.assertFalse(established,
                         f"{path}: connection refused with {code} must not get "
                         f"connection_established first: {established}")
        return c

    async def expect_http_status(self, path, status, tok=None, server=None, **kw):
        try:
            c = await self.connect(path, tok, server=server, **kw)
        except websockets.exceptions.InvalidStatusCode as e:
            self.assertEqual(e.status_code, status, f"handshake status for {path}")
            return
        except websockets.exceptions.InvalidHandshake as e:
            self.fail(f"{path}: expected HTTP {status} at the handshake, got {e!r}")
        self.fail(f"{path}: expected HTTP {status} at the handshake, but the WebSocket "
                  f"was accepted")

    def raw(self, path, server=None, **kw):
        srv = server or self.server
        r = RawWS(srv.port, path, **kw)
        self._raw.append(r)
        return r

    # -- assertions ------------------------------------------------------------

    def assertTimestamp(self, value, what="timestamp"):
        self.assertIsInstance(value, str, f"{what} must be a string: {value!r}")
        self.assertRegex(value, TS_RE, f"{what} must be ISO 8601 UTC with milliseconds")

    def assertSameId(self, got, expected, what="user id"):
        """User ids are echoed as the token gave them: number stays number."""
        self.assertEqual(got, expected, f"{what}")
        self.assertIs(type(got), type(expected),
                      f"{what} must keep its JSON type ({type(expected).__name__}): {got!r}")


def _pop_path_arg(env_key):
    """Moves argv[1] into the environment variable when it looks like a path."""
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-") and (
            os.sep in sys.argv[1] or os.path.isfile(sys.argv[1])):
        os.environ[env_key] = os.path.abspath(sys.argv.pop(1))


def main():
    """Entry point for test scripts: argv[1] may be the server binary's path,
    then argv[2] the sbctl binary's (else $SBCTL_BIN, else <repo>/build/sbctl)."""
    _pop_path_arg("SWITCHBOARD_BIN")
    _pop_path_arg("SBCTL_BIN")
    unittest.main(module="__main__", verbosity=2)


def sbctl_path():
    return os.path.abspath(os.environ.get("SBCTL_BIN") or
                           os.path.join(os.path.dirname(DEFAULT_BIN), "sbctl"))


# ==========================================================================
# Durable events milestone: servers on a given data dir, the HTTP server API,
# Server-Sent Events. (Appended; nothing above depends on it.)
# ==========================================================================

import http.client  # noqa: E402
import urllib.parse  # noqa: E402


class DataDirServer(Server):
    """A server on a data dir chosen by the test, so that a restart (a new
    DataDirServer on the same dir) finds the previous run's data."""

    def __init__(self, data_dir, overrides=(), env=None, name="server", config=None):
        super().__init__(overrides=(), config=config, env=env, name=name)
        shutil.rmtree(self.data_dir, ignore_errors=True)  # the default one is unused
        self.data_dir = data_dir
        self.overrides = list(overrides)
        self.args = [binary_path(), "--config", self.config_path, "--http.port=0",
                     f"--node.data_dir={data_dir}"] + self.overrides

    def sigkill(self):
        """kill -9, wait for it to be gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.kill()
        return self.proc.returncode if self.proc is not None else None


def make_data_dir(prefix="sb-itest-data-"):
    """A fresh temporary data dir (removed at exit)."""
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, d, True)
    return d


class ApiResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        self.text = body.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text) if self.text.strip() else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<HTTP {self.status} {self.text[:300]!r}>"


def http_request(port, method, path, body=None, *, key=API_KEY, headers=None,
                 raw_body=None, conn=None, timeout=10.0):
    """One HTTP request to the server API. body: JSON-encoded when given;
    raw_body: bytes sent as they are. key=None sends no Authorization.
    conn: an http.client.HTTPConnection to reuse (keep-alive)."""
    hdrs = dict(headers or {})
    if key is not None:
        hdrs["Authorization"] = f"Bearer {key}"
    data = raw_body
    if body is not None:
        data = json.dumps(body).encode()
    if data is not None:
        hdrs.setdefault("Content-Type", "application/json")
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        payload = r.read()
        return ApiResponse(r.status, r.getheaders(), payload)
    finally:
        if own:
            conn.close()


def api_publish(port, channel, type_, data, key=API_KEY):
    return http_request(port, "POST", "/api/publish",
                        {"channel": channel, "type": type_, "data": data}, key=key)


def api_history(port, channel, key=API_KEY, **params):
    q = {"channel": channel}
    q.update({k: v for k, v in params.items() if v is not None})
    return http_request(port, "GET", "/api/history?" + urllib.parse.urlencode(q), key=key)


class SSEStream:
    """A raw HTTP/1.1 GET reading a text/event-stream (chunked or not),
    parsed into events and comment lines. Blocking; use from a thread when
    the asyncio loop must keep running."""

    def __init__(self, port, path, headers=None, timeout=5.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        req = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\n"
        for k, v in (headers or {}).items():
            req += f"{k}: {v}\r\n"
        self.sock.sendall((req + "\r\n").encode())
        self.raw = b""
        self.body = b""        # decoded body not yet split into lines
        self.chunked = False
        self.eof = False
        self.pending = {}      # fields of the event being read
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.raw:
            if not self._fill(deadline):
                break
        head, _, rest = self.raw.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        lines = self.head.split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0] if lines else "")
        self.status = int(m.group(1)) if m else None
        self.headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self.raw = rest
        self._decode()

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.eof:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, OSError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.raw += chunk
        return True

    def _decode(self):
        if not self.chunked:
            self.body += self.raw
            self.raw = b""
            return
        while True:
            if b"\r\n" not in self.raw:
                return
            size_line, _, rest = self.raw.partition(b"\r\n")
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise AssertionError(f"bad chunk size line {size_line!r}")
            if size == 0:
                self.eof = True
                self.raw = b""
                return
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.raw = rest[size + 2:]

    def read_body(self, timeout=5.0):
        """For non-streaming answers (errors): the whole body."""
        deadline = time.monotonic() + timeout
        m = re.search(r"(?im)^content-length:\s*(\d+)", self.head)
        want = int(m.group(1)) if m else None
        while not self.eof and (want is None or len(self.body) < want):
            if not self._fill(deadline):
                break
            self._decode()
        return self.body

    def _line(self, deadline):
        while b"\n" not in self.body:
            if not self._fill(deadline):
                self._decode()
                if b"\n" not in self.body:
                    return None
            self._decode()
        line, _, self.body = self.body.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8")

    def next_item(self, timeout=5.0):
        """('comment', text) or ('event', {"id", "event", "data"}); None on
        timeout or end of stream."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._line(deadline)
            if line is None:
                return None
            if line == "":
                if self.pending:
                    ev, self.pending = self.pending, {}
                    return ("event", ev)
                continue
            if line.startswith(":"):
                return ("comment", line[1:])
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data" and "data" in self.pending:
                self.pending["data"] += "\n" + value
            else:
                self.pending[field] = value

    def next_event(self, timeout=5.0, pred=None):
        """The next event (comments skipped) for which pred(ev) holds."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.next_item(max(0.01, deadline - time.monotonic()))
            if item is None:
                return None
            if item[0] == "event" and (pred is None or pred(item[1])):
                return item[1]
            if time.monotonic() > deadline:
                return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def parse_sse_id(value):
    """'user:42=17,role:cadet=0' -> {'user:42': 17, 'role:cadet': 0}"""
    out = {}
    for part in value.split(","):
        ch, _, n = part.rpartition("=")
        out[ch] = int(n)
    return out


# ==========================================================================
# Cluster milestone: several nodes on loopback with mutual TLS on the
# cluster port. (Appended; nothing above depends on it.)
# ==========================================================================

CLUSTER_HEARTBEAT = 0.25  # seconds, short for the tests
CLUSTER_DEAD_AFTER = 2.0


def free_port():
    """A TCP port free on loopback right now (for cluster.port, which has no
    port-0 discovery through the log)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def make_pki(names, rogue=False):
    """A private CA and one certificate per node name, made by
    configs/cluster/make-certs.sh (plus a self-signed `rogue` certificate if
    asked). Returns the folder (removed at exit)."""
    d = tempfile.mkdtemp(prefix="sb-itest-pki-")
    atexit.register(shutil.rmtree, d, True)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs",
                          "cluster", "make-certs.sh")
    subprocess.run([script, d, *names], check=True, capture_output=True)
    if rogue:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        "rogue.key", "-out", "rogue.pem", "-days", "30", "-subj", "/CN=rogue"],
                       cwd=d, check=True, capture_output=True)
    return d


def cluster_overrides(node_id, cluster_port, seeds, pki, cert=None,
                      heartbeat=CLUSTER_HEARTBEAT, dead_after=CLUSTER_DEAD_AFTER):
    """Command-line overrides that make a server cluster node `node_id` on
    `cluster_port`, joining through `seeds` ("host:port" list), with the
    certificate `cert` (default: node_id) from the folder made by make_pki."""
    cert = cert or node_id
    return [f"--node.id={node_id}", f"--cluster.port={cluster_port}",
            "--cluster.seeds=" + json.dumps(list(seeds)),
            f"--cluster.certificate={pki}/{cert}.pem",
            f"--cluster.key={pki}/{cert}.key",
            f"--cluster.ca_file={pki}/ca.pem",
            f"--cluster.heartbeat_interval={heartbeat}",
            f"--cluster.dead_after={dead_after}"]


def cluster_states(port, timeout=3.0):
    """{node id: state} from GET /health of the node on `port`."""
    r = http_request(port, "GET", "/health", key=None, timeout=timeout)
    if r.status != 200 or not isinstance(r.json, dict):
        raise AssertionError(f"GET /health on port {port}: {r}")
    return {m["node"]: m["state"] for m in r.json["cluster"]["members"]}


def api_channel(port, channel, key=API_KEY, timeout=5.0):
    """GET /api/channel: the channel's owner, replicas, epoch and last_event_id
    as the node on `port` sees them."""
    return http_request(port, "GET", "/api/channel?" + urllib.parse.urlencode(
        {"channel": channel}), key=key, timeout=timeout)


def api_presence(port, channel, key=API_KEY, timeout=5.0):
    return http_request(port, "GET", "/api/presence?" + urllib.parse.urlencode(
        {"channel": channel}), key=key, timeout=timeout)


FAST = ("--limits.rate_limit=100000", "--limits.rate_limit_burst=100000")
NAMES = ("a", "b", "c")


class Cluster:
    """Nodes `names` of one cluster, each on its own data dir and cluster port,
    each seeding all the others. `down` holds the names the test has killed,
    stopped or is draining: clients of the test do not pick them."""

    def __init__(self, pki, label, names=NAMES, extra=()):
        self.pki = pki
        self.label = label
        self.names = tuple(names)
        self.ports = {n: free_port() for n in self.names}
        self.extra = list(extra)
        self.nodes = {}
        self.all = []  # every process started, restarts included (logs, cleanup)
        self.down = set()

    def overrides(self, name):
        seeds = [f"127.0.0.1:{p}" for n, p in self.ports.items() if n != name]
        return (cluster_overrides(name, self.ports[name], seeds, self.pki)
                + list(FAST) + self.extra)

    def start(self, name, data_dir=None):
        srv = DataDirServer(data_dir or make_data_dir(), overrides=self.overrides(name),
                            name=f"{self.label}-{name}")
        srv.node_id = name
        self.all.append(srv)
        srv.start()
        self.nodes[name] = srv
        self.down.discard(name)
        return srv

    def restart(self, name):
        """A new process for node `name` on the same data dir and ports."""
        return self.start(name, self.nodes[name].data_dir)

    def __getitem__(self, name):
        return self.nodes[name]

    def usable(self, prefer=None):
        """Running nodes the test has not taken down, `prefer` first."""
        out = [self.nodes[n] for n in self.names
               if n in self.nodes and n not in self.down and self.nodes[n].alive()]
        out.sort(key=lambda s: s.node_id != prefer)
        return out

    def kill_all(self):
        for s in self.all:
            self._resume(s)
            s.kill()

    def stop_all(self):
        for s in self.all:
            if s.alive():
                self._resume(s)
                s.stop(10)

    @staticmethod
    def _resume(s):
        """SIGCONT for a node a test may have stopped (SIGSTOP)."""
        if s.alive():
            try:
                s.proc.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass

    def cleanup(self):
        self.kill_all()
        for s in self.all:
            s.cleanup()

    def dump_logs(self, title):
        for s in self.all:
            sys.stderr.write(f"\n----- server log of {s.name} (tail) for {title} -----\n")
            sys.stderr.write(s.log_tail() + "\n")
        sys.stderr.write("----- end of server logs -----\n")
        sys.stderr.flush()

    def wait_all_up(self, timeout=15.0):
        """Blocks until every node's /health shows every node up."""
        deadline = time.monotonic() + timeout
        want = {n: "up" for n in self.names}
        seen = {}
        while time.monotonic() < deadline:
            try:
                seen = {n: cluster_states(self.nodes[n].port) for n in self.names}
            except Exception as e:  # a node still starting
                seen = {"error": repr(e)}
            if all(isinstance(v, dict) and all(v.get(k) == "up" for k in want)
                   for v in seen.values()):
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.label}: the cluster did not form within {timeout}s: "
                             f"/health states {seen}")
