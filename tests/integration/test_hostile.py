#!/usr/bin/python3
"""Hostile clients, backends and local users (issue 12, docs/security.md).

Each test replays one attack against the real binary and asserts that the
node stays up, that its memory stays under a stated bound, that other users'
connections are unaffected, and that the attacker gets a clear error or close
code."""

import asyncio
import json
import os
import socket
import sys
import time

import harness
from harness import SBTestCase, RawWS, token, unique_room, unique_uid


def rss_kib(server):
    """The server process's resident set size in KiB (from /proc)."""
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("VmRSS not found")


async def assert_bystander_served(test, server=None):
    """Another user on the same node still gets answers quickly."""
    c = await test.connect_ok("/ws/leaderboard/", token(unique_uid()), server=server)
    await c.send({"type": "ping", "id": "bystander", "timestamp": 1})
    pong = await c.recv("pong", timeout=2)
    test.assertEqual(pong.get("id"), "bystander")
    await c.close()


# --- 1, 7, 8: replays and history against the outbound bounds, SSE teardown, requests in flight ---


# --- 2, 4, 6, 11: subscription caps, per-user request limits, typing rights, filters, connection cap ---

def leaderboard_channels(tag, n):
    """`n` distinct channels of the leaderboard namespace, which any user may join."""
    return [f"leaderboard:{tag}-{i}" for i in range(n)]


async def subscribe_many(client, channels, id_prefix="s"):
    """Sends a subscribe for each channel at once; returns the answers
    (`subscribed` or `error`), one per frame."""
    for i, ch in enumerate(channels):
        await client.send({"type": "subscribe", "channel": ch, "id": f"{id_prefix}{i}"})
    return await client.recv_n(len(channels), ("subscribed", "error"), timeout=60)


def upgrade_request(path):
    """A complete WebSocket handshake request, as bytes."""
    return (f"GET {path} HTTP/1.1\r\nHost: {harness.HOST}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()


class SubscriptionCapTest(SBTestCase):
    """2: a connection may subscribe to 5 channels here, a user to 8 over
    their connections on the node (defaults 100 and 1,000)."""
    server_overrides = ["--limits.max_channels_per_connection=5",
                        "--limits.max_channels_per_user=8",
                        "--limits.request_rate_limit=100000",
                        "--limits.request_rate_limit_burst=100000"]

    async def test_subscription_flood_is_capped_per_connection(self):
        attacker = await self.connect_ok("/ws/", token(unique_uid()), label="attacker")
        rss_before = rss_kib(self.server)
        n = 2000
        answers = await subscribe_many(attacker, leaderboard_channels(unique_room("flood"), n))
        subscribed = [a for a in answers if a["type"] == "subscribed"]
        refused = [a for a in answers if a["type"] == "error"]
        self.assertEqual([a.get("id") for a in subscribed], [f"s{i}" for i in range(5)],
                         "the first 5 subscriptions are taken, in order")
        self.assertEqual(len(refused), n - 5)
        for e in refused:
            self.assertEqual(e.get("code"), "limit_exceeded", f"{e}")
            self.assertTrue(e.get("id", "").startswith("s"), f"the refusal carries the id: {e}")
        growth = rss_kib(self.server) - rss_before
        self.assertLess(growth, 16 * 1024, f"2,000 subscribe attempts grew the node by {growth} KiB")
        await attacker.send({"type": "ping", "id": "still-open"})
        self.assertEqual((await attacker.recv("pong")).get("id"), "still-open")
        await assert_bystander_served(self)

    async def test_channels_are_capped_per_user_over_their_connections(self):
        uid, tag = unique_uid(), unique_room("user")
        c1 = await self.connect_ok("/ws/", token(uid), label="c1")
        c2 = await self.connect_ok("/ws/", token(uid), label="c2")
        first = await subscribe_many(c1, leaderboard_channels(tag + "a", 5))
        self.assertEqual([a["type"] for a in first], ["subscribed"] * 5)
        second = await subscribe_many(c2, leaderboard_channels(tag + "b", 5))
        self.assertEqual([a["type"] for a in second], ["subscribed"] * 3 + ["error"] * 2,
                         f"8 channels per user: {second}")
        self.assertEqual({a.get("code") for a in second[3:]}, {"limit_exceeded"})
        # A channel left frees its place for the user's other connection.
        await c1.send({"type": "unsubscribe", "channel": f"leaderboard:{tag}a-0", "id": "u"})
        await c1.recv("unsubscribed")
        await c2.send({"type": "subscribe", "channel": f"leaderboard:{tag}b-3", "id": "again"})
        self.assertEqual((await c2.recv(("subscribed", "error"))).get("type"), "subscribed")
        # So does a connection that closes (once the node has noticed).
        await c1.close()
        c3 = await self.connect_ok("/ws/", token(uid), label="c3")
        deadline = time.monotonic() + 5
        while True:
            await c3.send({"type": "subscribe", "channel": f"leaderboard:{tag}c", "id": "c"})
            got = await c3.recv(("subscribed", "error"))
            if got["type"] == "subscribed" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        self.assertEqual(got["type"], "subscribed", f"c1's channels were not given back: {got}")
        await assert_bystander_served(self)


class EmptyChannelEpochTest(SBTestCase):
    """2: an empty channel writes nothing to the log until its first event,
    yet shows one epoch throughout: before a restart and after it (SIGTERM
    or kill -9), and once its first event is stored."""
    start_class_server = False

    def boot(self, data_dir):
        srv = harness.DataDirServer(data_dir, name=f"{self._testMethodName}-{len(self._own_servers)}")
        self._own_servers.append(srv)
        self.addCleanup(srv.kill)
        srv.start()
        return srv

    async def position(self, srv, channel, **fields):
        """Subscribes on /ws/; returns the `subscribed` frame and the client."""
        c = await self.connect_ok("/ws/", token(unique_uid()), server=srv)
        await c.send({"type": "subscribe", "channel": channel, "id": "s", **fields})
        return await c.recv("subscribed"), c

    async def test_empty_channel_keeps_its_epoch(self):
        data_dir = harness.make_data_dir()
        srv = self.boot(data_dir)
        channel = f"leaderboard:{unique_room('epoch')}"
        sub, c = await self.position(srv, channel)
        epoch = sub["epoch"]
        self.assertEqual(sub["last_event_id"], 0)
        self.assertEqual((await self.position(srv, channel))[0]["epoch"], epoch)
        await c.close()
        rc = await asyncio.to_thread(srv.stop, 10)
        self.assertEqual(rc, 0)
        srv = self.boot(data_dir)
        self.assertEqual((await self.position(srv, channel))[0]["epoch"], epoch,
                         "a restart changed an empty channel's epoch")
        await asyncio.to_thread(srv.sigkill)
        srv = self.boot(data_dir)
        sub, live = await self.position(srv, channel)
        self.assertEqual(sub["epoch"], epoch, "kill -9 changed an empty channel's epoch")
        r = await asyncio.to_thread(harness.api_publish, srv.port, channel, "score", {"n": 1})
        self.assertEqual(r.status, 200, f"{r}")
        self.assertEqual((r.json["event_id"], r.json["epoch"]), (1, epoch),
                         "the first event keeps the epoch the channel showed while empty")
        self.assertEqual((await live.recv("score"))["event_id"], 1)
        await asyncio.to_thread(srv.sigkill)
        srv = self.boot(data_dir)
        sub, c = await self.position(srv, channel, since=0, epoch=epoch)
        self.assertEqual((sub["epoch"], sub["last_event_id"]), (epoch, 1))
        self.assertEqual((await c.recv("score"))["event_id"], 1)
        done = await c.recv("replay_complete")
        self.assertIs(done["gap"], False, f"{done}")
        await assert_bystander_served(self, srv)


class RequestLimitTest(SBTestCase):
    """4: typing needs publish rights; typing, presence, history, replay and
    subscribe take tokens from a bucket of their own per user (here 5 a
    second, burst 20; defaults 20 and 100); a repeated typing state is not
    broadcast again within a second."""
    server_overrides = ["--limits.request_rate_limit=5", "--limits.request_rate_limit_burst=20"]

    async def test_typing_on_a_read_only_channel_is_forbidden(self):
        victim = await self.connect_ok("/ws/leaderboard/", token(unique_uid()), label="victim")
        attacker = await self.connect_ok("/ws/leaderboard/", token(unique_uid(), name="Admin"),
                                         label="attacker")
        await attacker.send({"type": "typing", "is_typing": True, "id": "t1"})
        err = await attacker.recv(("ack", "error"), pred=lambda f: f.get("id") == "t1")
        self.assertEqual((err["type"], err.get("code")), ("error", "forbidden"), f"{err}")
        await victim.expect_none("typing", 0.5)
        await assert_bystander_served(self)

    async def test_typing_flood_is_coalesced_and_rate_limited(self):
        room = unique_room("typing")
        ua = unique_uid()
        victim = await self.join(room, unique_uid(), label="victim")
        attacker = await self.join(room, ua, label="attacker")
        n = 2000
        for i in range(n):
            await attacker.send({"type": "typing", "is_typing": True, "id": f"t{i}"})
        answers = await attacker.recv_n(n, ("ack", "error"), timeout=60)
        errors = [a for a in answers if a["type"] == "error"]
        self.assertTrue(errors, "2,000 typing frames at once must exceed the request burst")
        self.assertEqual({e.get("code") for e in errors}, {"rate_limited"})
        self.assertGreaterEqual(n - len(errors), 20, "the burst of 20 passes")
        seen = [f for f in await victim.collect(1.0)
                if f.get("type") == "typing" and f.get("user_id") == ua]
        self.assertGreaterEqual(len(seen), 1)
        self.assertLess(len(seen), 10, f"one typing state per user, not {len(seen)} frames")
        # The stored-event bucket is untouched, and both stay connected.
        await attacker.send({"type": "message", "message": "hi", "id": "m"})
        ack = await attacker.recv(("ack", "error"), pred=lambda f: f.get("id") == "m")
        self.assertEqual(ack["type"], "ack", f"{ack}")
        self.assertEqual((await victim.recv("message"))["content"], "hi")
        await assert_bystander_served(self)

    async def test_read_requests_are_rate_limited_per_user(self):
        room = unique_room("reads")
        uid = unique_uid()
        a = await self.join(room, uid, label="a")
        b = await self.join(room, uid, label="b")  # the same user: one bucket
        kinds = [{"type": "presence"}, {"type": "history", "limit": 500},
                 {"type": "replay_request", "last_event_id": 0}]
        n = 60
        for i in range(n):
            await (a if i % 2 else b).send({**kinds[i % 3], "id": f"r{i}"})
        answers = (await a.recv_n(n // 2, ("presence", "history", "replay_complete", "error"),
                                  timeout=30) +
                   await b.recv_n(n // 2, ("presence", "history", "replay_complete", "error"),
                                  timeout=30))
        self.assertEqual(sorted(f.get("id") for f in answers), sorted(f"r{i}" for i in range(n)),
                         "every request gets exactly one answer, with its id")
        errors = [f for f in answers if f["type"] == "error"]
        self.assertTrue(errors, "60 requests at once must exceed the burst of 20")
        self.assertEqual({e.get("code") for e in errors}, {"rate_limited"})
        # Subscribes draw on the same bucket.
        mux = await self.connect_ok("/ws/", token(uid), label="mux")
        got = await subscribe_many(mux, leaderboard_channels(unique_room("rl"), 30))
        self.assertIn("rate_limited", {f.get("code") for f in got if f["type"] == "error"})
        await assert_bystander_served(self)


class NotificationFilterCapTest(SBTestCase):
    """6: a connection filters on at most 10 notification types here
    (default 100), each at most 64 characters; the filter is a set."""
    server_overrides = ["--limits.max_notification_types=10",
                        "--limits.request_rate_limit=100000",
                        "--limits.request_rate_limit_burst=100000"]

    async def test_notification_filter_flood_is_refused(self):
        uid = unique_uid()
        c = await self.connect_ok("/ws/notifications/", token(uid), label="attacker")
        wanted = [f"t{i}" for i in range(10)]
        await c.send({"type": "subscribe", "notification_types": wanted + ["t0"], "id": "f1"})
        self.assertEqual((await c.recv(("subscribed", "error")))["type"], "subscribed")
        await c.send({"type": "subscribe", "notification_types": ["t10"], "id": "f2"})
        err = await c.recv(("subscribed", "error"))
        self.assertEqual((err["type"], err.get("code"), err.get("id")),
                         ("error", "limit_exceeded", "f2"), f"{err}")
        await c.send({"type": "subscribe", "notification_types": ["x" * 65], "id": "f3"})
        err = await c.recv(("subscribed", "error"))
        self.assertEqual((err.get("code"), err.get("id")), ("invalid_message", "f3"), f"{err}")
        rss_before = rss_kib(self.server)
        frames = 30
        for i in range(frames):
            await c.send({"type": "subscribe", "id": f"big{i}",
                          "notification_types": [f"n{i}-{k}" for k in range(5000)]})
        answers = await c.recv_n(frames, ("subscribed", "error"), timeout=30)
        self.assertEqual({(a["type"], a.get("code")) for a in answers}, {("error", "limit_exceeded")})
        growth = rss_kib(self.server) - rss_before
        self.assertLess(growth, 16 * 1024, f"30 frames of 5,000 types grew the node by {growth} KiB")
        # The filter is what it was: t3 and t9 pass, others do not.
        for type_ in ("other", "t3", "t10", "t9"):
            r = await asyncio.to_thread(harness.api_publish, self.server.port, f"user:{uid}", type_, {})
            self.assertEqual(r.status, 200, f"{r}")
        got = [f["type"] for f in await c.collect(0.5) if "event_id" in f]
        self.assertEqual(got, ["t3", "t9"])
        await assert_bystander_served(self)


class ConnectionCapTest(SBTestCase):
    """11: at most 6 WebSocket and SSE connections on this node (default
    50,000), /ws/health/ included; over it, HTTP 503 with a JSON body."""
    server_overrides = ["--limits.max_connections=6"]

    def assert_full(self, response, what):
        self.assertEqual(harness.http_status(response), 503, f"{what}: {response[:300]!r}")
        body = json.loads(response.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(body.get("error"), "unavailable", f"{what}: {body}")
        self.assertIn("limits.max_connections", body.get("message", ""), f"{what}: {body}")

    async def test_connections_over_the_cap_get_503(self):
        port = self.server.port
        member = await self.connect_ok("/ws/leaderboard/", token(unique_uid()), label="member")
        held = []
        for _ in range(5):
            r = await asyncio.to_thread(self.raw, "/ws/health/")
            self.assertEqual(r.status, 101)
            held.append(r)
        tok = token(unique_uid())
        for path in ("/ws/health/", f"/ws/leaderboard/?token={tok}", "/ws/"):
            response, _ = await asyncio.to_thread(harness.raw_http, port, upgrade_request(path))
            self.assert_full(response, path)
        sse = await asyncio.to_thread(harness.http_request, port, "GET",
                                      f"/api/events?token={tok}", key=None)
        self.assertEqual(sse.status, 503, f"SSE: {sse}")
        self.assertEqual(sse.json.get("error"), "unavailable")
        # Plain HTTP is not counted: the load balancer's health check still works.
        health = await asyncio.to_thread(harness.http_request, port, "GET", "/health", key=None)
        self.assertEqual(health.status, 200)
        # Connections already open are served.
        await member.send({"type": "ping", "id": "p"})
        self.assertEqual((await member.recv("pong")).get("id"), "p")
        # A connection that closes frees its place.
        for r in held[:2]:
            r.close()
        deadline = time.monotonic() + 5
        while True:
            probe = await asyncio.to_thread(RawWS, port, "/ws/health/")
            probe.close()
            if probe.status == 101 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        self.assertEqual(probe.status, 101, "closed connections must give their places back")
        await assert_bystander_served(self)
        self.assertTrue(self.server.alive())



# --- 3, 5, 9, 10, 13: deep JSON, secrets in logs, file modes, JWT base64, weak secrets ---


# --- 12: idempotency keys on the server API ---


if __name__ == "__main__":
    harness.main()
