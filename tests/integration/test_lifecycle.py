#!/usr/bin/python3
"""Process lifecycle: SIGTERM (1001, exit 0), configuration errors, secrets from
the environment and command line, and bad HTTP at the handshake."""

import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import time

import harness
from harness import (SBTestCase, Server, token, unique_room, unique_uid, raw_http, http_status,
                     base_config, SECRET, HOST)

DEV_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "configs", "dev.json")


class ShutdownTest(SBTestCase):
    start_class_server = False

    async def test_sigterm_closes_with_1001_and_exits_0(self):
        srv = self.start_server(name="sigterm")
        room = unique_room()
        uid = unique_uid()
        chat = await self.connect_ok(f"/ws/chat/{room}/", token(uid, channels=[f"chat:{room}"]),
                                     server=srv)
        upd = await self.connect_ok("/ws/updates/", token(unique_uid(), role="cadet"), server=srv)
        mux = await self.connect_ok("/ws/", token(unique_uid()), server=srv)
        health = await self.connect("/ws/health/", server=srv)
        await chat.send({"type": "message", "message": "before shutdown", "id": "b"})
        await chat.recv("ack")

        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        for c in (chat, upd, mux, health):
            await c.expect_close(1001, timeout=10)
        rc = await asyncio.to_thread(srv.wait_exit, 10)
        self.assertEqual(rc, 0, f"exit code after SIGTERM (took {time.monotonic() - t0:.1f}s)")

    async def test_sigterm_idle_server_exits_0(self):
        srv = self.start_server(name="sigterm-idle")
        rc = await asyncio.to_thread(srv.stop, 10)
        self.assertEqual(rc, 0)


class ConfigTest(SBTestCase):
    start_class_server = False

    def run_bad(self, config=None, config_text=None, overrides=(), env=None, args=None):
        # No --http.port=0 override here: it would mask a bad http.port in the file
        # (base_config() already has port 0).
        srv = Server(overrides=overrides, config=config, config_text=config_text, env=env,
                     name=self._testMethodName, add_port_override=False)
        srv.args.insert(3, f"--node.data_dir={srv.data_dir}")
        self._own_servers.append(srv)
        if args is not None:
            srv.args = [srv.args[0]] + args
        rc = srv.run_to_exit(10)
        out = srv.log()
        self.assertIsNotNone(rc, f"server with a bad config must exit by itself, but it kept "
                                 f"running\n{out[-2000:]}")
        self.assertNotEqual(rc, 0, f"bad config must exit non-zero\n{out[-2000:]}")
        self.assertGreater(rc, 0, f"bad config must exit cleanly, not die by signal {-rc}\n"
                                  f"{out[-2000:]}")
        self.assertNotRegex(out, r"listening.*port=", "must not start listening")
        self.assertTrue(out.strip(), "a bad config needs an error message")
        return out

    async def test_unknown_top_level_key(self):
        cfg = base_config()
        cfg["frobnicate"] = {"x": 1}
        out = self.run_bad(config=cfg)
        self.assertIn("frobnicate", out)

    async def test_unknown_nested_key(self):
        cfg = base_config()
        cfg["http"]["bogus_option"] = 1
        out = self.run_bad(config=cfg)
        self.assertIn("bogus_option", out)

    async def test_unknown_key_typo_in_limits(self):
        cfg = base_config()
        cfg["limits"] = {"heartbeat_intervall": 5}
        out = self.run_bad(config=cfg)
        self.assertIn("heartbeat_intervall", out)

    async def test_unknown_override_key(self):
        out = self.run_bad(overrides=["--http.port=0", "--limits.nonsense_limit=3"])
        self.assertIn("nonsense_limit", out)

    async def test_unknown_namespace_option(self):
        cfg = base_config()
        cfg["namespaces"] = {"chat": {"access": "members", "colour": "blue"}}
        out = self.run_bad(config=cfg)
        self.assertIn("colour", out)

    async def test_wrong_types(self):
        cases = [
            (("http", "port"), "not-a-port", "port"),
            (("limits", "heartbeat_interval"), "fast", "heartbeat_interval"),
            (("limits", "max_connections_per_user"), [1], "max_connections_per_user"),
            (("http", "allowed_origins"), "http://x.example", "allowed_origins"),
            (("auth", "api_keys"), 42, "api_keys"),
        ]
        for (sect, key), value, name in cases:
            with self.subTest(key=f"{sect}.{key}"):
                cfg = base_config()
                cfg.setdefault(sect, {})[key] = value
                out = self.run_bad(config=cfg)
                self.assertIn(name, out, "the error should name the offending key")

    async def test_wrong_type_in_override(self):
        out = self.run_bad(overrides=["--http.port=0", "--limits.rate_limit_burst=lots"])
        self.assertIn("rate_limit_burst", out)

    async def test_invalid_enum_values(self):
        for cfg_patch, name in (
                ({"namespaces": {"chat": {"access": "everyone"}}}, "access"),
                ({"routes": [{"path": "/ws/x/", "kind": "teleport"}]}, "kind"),
                ({"log": {"level": "loud", "format": "plain"}}, "level")):
            with self.subTest(name=name):
                cfg = base_config()
                cfg.update(cfg_patch)
                out = self.run_bad(config=cfg)
                self.assertIn(name, out)

    async def test_invalid_json(self):
        for text in ('{"http": {"port": 0,,}', "{ not json", '{"http": ', "[1, 2]", ""):
            with self.subTest(text=text):
                self.run_bad(config_text=text)

    async def test_missing_config_file(self):
        missing = "/nonexistent/dir/switchboard-missing.json"
        out = self.run_bad(args=["--config", missing, "--http.port=0"])
        self.assertIn("switchboard-missing.json", out, "the error should name the file")

    async def test_comments_allowed_dev_config_starts(self):
        # The shipped dev config (with // comments) starts with port and data dir overridden.
        srv = Server(name="devcfg", add_port_override=False)
        self._own_servers.append(srv)
        srv.args = [srv.args[0], "--config", DEV_CONFIG, "--http.port=0",
                    f"--node.data_dir={srv.data_dir}"]
        srv.start()
        try:
            tok = token(unique_uid(), secret="dev-secret-change-me")
            c = await self.connect_ok("/ws/leaderboard/", tok, server=srv)
            self.assertEqual(c.established.get("node"), "dev-1")
            self.assertEqual(c.established.get("heartbeat_interval"), 25)
            await c.close()
        finally:
            self.assertEqual(srv.stop(), 0)

    async def test_block_comments_and_trailing_text_comment(self):
        text = ("/* block comment */\n{\n  // line comment\n  \"node\": {\"id\": \"cmt-1\"},\n"
                f"  \"auth\": {{\"jwt_secret\": \"{SECRET}\"}} /* trailing */\n}}\n")
        srv = Server(config_text=text, name="comments")
        self._own_servers.append(srv)
        srv.start()
        try:
            c = await self.connect_ok("/ws/leaderboard/", token(unique_uid()), server=srv)
            self.assertEqual(c.established.get("node"), "cmt-1")
            await c.close()
        finally:
            self.assertEqual(srv.stop(), 0)

    async def test_secret_from_environment(self):
        cfg = base_config()
        del cfg["auth"]["jwt_secret"]
        env_secret = "env-secret-xyz-0123456789abcdefghij"
        srv = Server(config=cfg, env={"SWITCHBOARD_JWT_SECRET": env_secret}, name="envsecret")
        self._own_servers.append(srv)
        srv.start()
        try:
            c = await self.connect_ok("/ws/leaderboard/", token(unique_uid(), secret=env_secret),
                                      server=srv)
            self.assertEqual(c.established["type"], "connection_established")
            await c.close()
            await self.expect_refused("/ws/leaderboard/", token(unique_uid()), 4003, server=srv)
        finally:
            self.assertEqual(srv.stop(), 0)

    async def test_secret_from_override(self):
        cli_secret = "abc-0123456789abcdefghij0123456789"
        srv = Server(overrides=[f"--auth.jwt_secret={cli_secret}"], name="cli-secret")
        self._own_servers.append(srv)
        srv.start()
        try:
            c = await self.connect_ok("/ws/leaderboard/", token(unique_uid(), secret=cli_secret),
                                      server=srv)
            self.assertEqual(c.established["type"], "connection_established")
            await c.close()
            await self.expect_refused("/ws/leaderboard/", token(unique_uid()), 4003, server=srv)
        finally:
            self.assertEqual(srv.stop(), 0)

    async def test_node_id_override(self):
        srv = Server(overrides=["--node.id=override-node-7"], name="nodeid")
        self._own_servers.append(srv)
        srv.start()
        try:
            c = await self.connect_ok("/ws/leaderboard/", token(unique_uid()), server=srv)
            self.assertEqual(c.established.get("node"), "override-node-7")
            await c.close()
        finally:
            self.assertEqual(srv.stop(), 0)


class OutOfDescriptorsTest(SBTestCase):
    """A node out of file descriptors neither spins nor dies: it pauses
    accepting, and serves again once connections close."""
    start_class_server = False

    def test_accept_backs_off_and_recovers(self):
        srv = Server(name="fd-limit")
        srv.args = [shutil.which("prlimit") or "/usr/bin/prlimit", "--nofile=60:60"] + srv.args
        srv.start()
        self.addCleanup(srv.kill)
        held = [socket.create_connection((harness.HOST, srv.port)) for _ in range(100)]
        time.sleep(0.5)

        def cpu_ticks():
            with open(f"/proc/{srv.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])

        before = cpu_ticks()
        time.sleep(1.0)
        used = cpu_ticks() - before
        self.assertLess(used, os.sysconf("SC_CLK_TCK") // 2,
                        f"the node spun while out of descriptors\n{srv.log()[-1500:]}")
        self.assertIn("accept_failed", srv.log())
        for s in held:
            s.close()
        deadline = time.monotonic() + 5
        status = None
        while time.monotonic() < deadline:
            try:
                response, _ = raw_http(srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n"
                                                 b"Connection: close\r\n\r\n")
                status = http_status(response)
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        self.assertEqual(status, 200, srv.log()[-1500:])
        self.assertEqual(srv.stop(10), 0)


class BadHttpTest(SBTestCase):

    async def assert_serving(self):
        room = unique_room()
        uid = unique_uid()
        c = await self.connect_ok(f"/ws/chat/{room}/", token(uid, channels=[f"chat:{room}"]))
        await c.send({"type": "message", "message": "ok", "id": "ok"})
        self.assertEqual((await c.recv("ack")).get("event_id"), 1)
        await c.close()

    def assert_error_or_closed(self, resp, closed, what):
        status = http_status(resp)
        if status is not None:
            self.assertGreaterEqual(status, 400, f"{what}: got {resp[:200]!r}")
            self.assertLess(status, 600)
        else:
            self.assertTrue(closed and not resp,
                            f"{what}: expected an HTTP error or a close, got {resp[:200]!r}")

    async def test_plain_get_on_ws_path(self):
        room = unique_room()
        tok = token(unique_uid(), channels=[f"chat:{room}"])

        def get():
            conn = http.client.HTTPConnection(HOST, self.server.port, timeout=5)
            try:
                conn.request("GET", f"/ws/chat/{room}/?token={tok}")
                r = conn.getresponse()
                return r.status, r.read()
            finally:
                conn.close()

        try:
            status, body = await asyncio.to_thread(get)
        except (http.client.RemoteDisconnected, ConnectionResetError):
            status = None
        if status is not None:
            self.assertGreaterEqual(status, 400, "a non-WebSocket GET on a /ws/ path is an error")
            self.assertLess(status, 500, "a client error, not a server error")
        await self.assert_serving()

    async def test_garbage_bytes(self):
        for data in (b"\x00\xff\xfe garbage \x01\x02\r\n\r\n",
                     b"HELLO THERE\r\n\r\n",
                     b"GET\r\n\r\n",
                     b"GET /ws/health/ HTTP/9.9\r\n\r\n",
                     b"\x16\x03\x01\x02\x00" + os.urandom(4091)):
            resp, closed = await asyncio.to_thread(raw_http, self.server.port, data, 5)
            self.assert_error_or_closed(resp, closed, repr(data[:30]))
            self.assertTrue(closed or http_status(resp),
                            f"server must answer or close after garbage {data[:30]!r}")
        self.assertTrue(self.server.alive())
        await self.assert_serving()

    async def test_huge_header(self):
        room = unique_room()
        tok = token(unique_uid(), channels=[f"chat:{room}"])
        req = (f"GET /ws/chat/{room}/?token={tok} HTTP/1.1\r\nHost: {HOST}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               f"X-Huge: {'a' * 200000}\r\n\r\n").encode()
        resp, closed = await asyncio.to_thread(raw_http, self.server.port, req, 5)
        self.assertNotEqual(http_status(resp), 101, "a 200 KB header must not be accepted")
        self.assert_error_or_closed(resp, closed, "huge header")
        # Huge request line.
        req = (f"GET /ws/chat/{'r' * 200000}/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n").encode()
        resp, closed = await asyncio.to_thread(raw_http, self.server.port, req, 5)
        self.assertNotEqual(http_status(resp), 101)
        self.assert_error_or_closed(resp, closed, "huge request line")
        self.assertTrue(self.server.alive())
        await self.assert_serving()

    async def test_bad_websocket_handshakes(self):
        room = unique_room()
        tok = token(unique_uid(), channels=[f"chat:{room}"])
        base = (f"GET /ws/chat/{room}/?token={tok} HTTP/1.1\r\nHost: {HOST}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\n")
        cases = {
            "no key": base + "Sec-WebSocket-Version: 13\r\n\r\n",
            "version 8": base + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 8\r\n\r\n",
            "POST": base.replace("GET", "POST", 1) +
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    "Content-Length: 0\r\n\r\n",
        }
        for what, req in cases.items():
            with self.subTest(case=what):
                resp, closed = await asyncio.to_thread(raw_http, self.server.port, req.encode(), 5)
                self.assertNotEqual(http_status(resp), 101, f"{what} must not upgrade")
                self.assert_error_or_closed(resp, closed, what)
        await self.assert_serving()

    async def test_stalled_client_does_not_block_others(self):
        s = socket.create_connection((HOST, self.server.port), timeout=5)
        try:
            s.sendall(b"GET /ws/health/ HTTP/1.1\r\nHost: x\r\n")  # never finished
            t0 = time.monotonic()
            await self.assert_serving()
            self.assertLess(time.monotonic() - t0, 3, "a stalled handshake must not block others")
        finally:
            s.close()

    async def test_abrupt_disconnects(self):
        # Clients that vanish mid-handshake or right after it.
        for _ in range(5):
            s = socket.create_connection((HOST, self.server.port), timeout=5)
            s.sendall(b"GET /ws/chat/x/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
            s.close()
        room = unique_room()
        tok = token(unique_uid(), channels=[f"chat:{room}"])
        for _ in range(3):
            r = await asyncio.to_thread(harness.RawWS, self.server.port,
                                        f"/ws/chat/{room}/?token={tok}")
            r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            r.close()  # RST
        await asyncio.sleep(0.2)
        self.assertTrue(self.server.alive())
        await self.assert_serving()


if __name__ == "__main__":
    harness.main()
