"""What the Python client's tests share: the paths (the package, the
integration harness, the example Django project), a node configuration with
secrets of production length, and a TCP relay that can cut a node off in the
middle of a request.

The node is the real binary, started by tests/integration/harness.py."""

import asyncio
import os
import re
import socket
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
for path in (os.path.dirname(HERE), os.path.join(REPO, "tests", "integration"),
             os.path.join(REPO, "examples", "django")):
    if path not in sys.path:
        sys.path.insert(0, path)

import harness  # noqa: E402

API_KEY = "python-client-tests-api-key-0123456789abcdef"
JWT_SECRET = "python-client-tests-jwt-secret-0123456789abcdef"
ADMIN_TOKEN = "python-client-tests-admin-token-0123456789"


class AsyncTestCase(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        # unittest runs the loop in debug mode: slow, and noisy about the
        # tests' deliberate blocking calls.
        asyncio.get_running_loop().set_debug(False)


def node_config():
    cfg = harness.base_config()
    cfg["node"]["id"] = "py-node-1"
    cfg["auth"] = {"jwt_secret": JWT_SECRET, "api_keys": [API_KEY]}
    cfg["admin"] = {"token": ADMIN_TOKEN}
    return cfg


def start_node(data_dir=None, name="py"):
    """A started node: on its own data dir, or on `data_dir` (a restart)."""
    srv = (harness.DataDirServer(data_dir, config=node_config(), name=name) if data_dir
           else harness.Server(config=node_config(), name=name))
    srv.start()
    return srv


def base_url(srv):
    return f"http://{harness.HOST}:{srv.port}"


def admin_url(srv):
    return f"http://{harness.HOST}:{srv.admin_port}"


_KEY_RE = re.compile(rb"\r\nIdempotency-Key: *([^\r]*)\r\n", re.I)


class Relay:
    """A TCP relay on loopback in front of a node (`upstream` is its port and
    may change when the node restarts). `cut` (a callable) makes the next
    request's answer never reach the client: when the node's first answer
    bytes arrive, the relay calls cut() (which kills the node) and drops both
    connections. It records each request's Idempotency-Key."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.cut = None
        self.keys = []
        self.cut_done = threading.Event()
        self._listener = socket.create_server((harness.HOST, 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return f"http://{harness.HOST}:{self.port}"

    def close(self):
        self._closed = True
        self._listener.close()

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            node = socket.create_connection((harness.HOST, self.upstream), timeout=2)
        except OSError:
            client.close()  # the node is down: the client sees the connection closed
            return
        threading.Thread(target=_pump, args=(client, node, self._request),
                         daemon=True).start()
        _pump(node, client, self._answer)

    def _request(self, data):
        self.keys += [m.decode() for m in _KEY_RE.findall(data)]
        return True

    def _answer(self, data):
        cut, self.cut = self.cut, None
        if not cut:
            return True
        cut()
        self.cut_done.set()
        return False


def _pump(src, dst, forward):
    """Copies src to dst while forward(data) says so, then closes both."""
    try:
        while True:
            data = src.recv(65536)
            if not data or not forward(data):
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _shut(src)
        _shut(dst)


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
