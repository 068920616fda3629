#!/usr/bin/python3
"""Limits: connections per user (4008), slow consumers (4009), rate limiting,
frame size (1009) and heartbeats (PROTOCOL sections 2, 4 and 10)."""

import asyncio
import json
import socket
import sys
import time

import harness
from harness import (SBTestCase, RawWS, token, unique_room, unique_uid, OP_CLOSE, OP_PING,
                     OP_TEXT, OP_BINARY, close_code_from_payload)


def read_until_close(raw, timeout, answer_pings=True):
    """Reads a raw connection until a close frame or EOF. Returns
    (json_frames, state, code) where state is 'close', 'eof' or 'open'."""
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return frames, "open", None
        try:
            op, payload = raw.recv_message(remaining, answer_pings=answer_pings)
        except (EOFError, ConnectionResetError):
            return frames, "eof", None
        except (socket.timeout, TimeoutError):
            return frames, "open", None
        if op == OP_CLOSE:
            return frames, "close", close_code_from_payload(payload)
        if op == OP_TEXT:
            frames.append(json.loads(payload))


class ConnectionLimitTest(SBTestCase):
    server_overrides = ["--limits.max_connections_per_user=2"]

    async def test_third_connection_across_routes_4008(self):
        uid, room = unique_uid(), unique_room()
        tok = token(uid, role="cadet", channels=[f"chat:{room}"])
        c1 = await self.connect_ok(f"/ws/chat/{room}/", tok)
        c2 = await self.connect_ok("/ws/updates/", tok)
        c3 = await self.connect("/ws/leaderboard/", tok)
        frames = await c3.expect_close(4008)
        self.assertFalse([f for f in frames if f.get("type") == "connection_established"],
                         "a connection over the limit must not be established")
        c4 = await self.connect(f"/ws/chat/{room}/", tok)
        await c4.expect_close(4008)

        # Other users are not affected.
        other = await self.connect_ok("/ws/leaderboard/", token(unique_uid()))
        self.assertEqual(other.established["type"], "connection_established")

        # The two open connections still work.
        await c1.send({"type": "message", "message": "alive", "id": "a1"})
        self.assertEqual((await c1.recv("ack")).get("event_id"), 1)
        await c2.send({"type": "ping", "id": "p2"})
        self.assertEqual((await c2.recv("pong")).get("id"), "p2")

        # Closing one frees a slot.
        await c1.close()
        est = None
        for attempt in range(4):
            await asyncio.sleep(0.3)
            c5 = await self.connect("/ws/leaderboard/", tok)
            try:
                first = await c5.recv(timeout=3)
            except AssertionError:
                continue
            est = first
            break
        self.assertIsNotNone(est, "after closing one of two connections, a new one must succeed")
        self.assertEqual(est.get("type"), "connection_established")
        # ...and the limit applies again.
        c6 = await self.connect("/ws/notifications/", tok)
        await c6.expect_close(4008)

    async def test_limit_same_route(self):
        uid, room = unique_uid(), unique_room()
        tok = token(uid, channels=[f"chat:{room}"])
        await self.connect_ok(f"/ws/chat/{room}/", tok)
        await self.connect_ok(f"/ws/chat/{room}/", tok)
        c3 = await self.connect(f"/ws/chat/{room}/", tok)
        await c3.expect_close(4008)


class DefaultLimitsTest(SBTestCase):
    """Default limits: 10 messages/s with a burst of 20, 64 KiB frames."""

    async def test_rate_limited_burst(self):
        room = unique_room()
        ua = unique_uid()
        a = await self.join(room, ua)
        b = await self.join(room, unique_uid())
        n = 25
        for i in range(n):
            await a.send({"type": "message", "message": f"r{i}", "id": f"r{i}"})
        replies = await a.recv_n(n, ("ack", "error"), timeout=10)
        acks = [f for f in replies if f["type"] == "ack"]
        errs = [f for f in replies if f["type"] == "error"]
        self.assertTrue(errs, "25 messages at once must exceed the default burst of 20")
        for e in errs:
            self.assertEqual(e.get("code"), "rate_limited", f"{e}")
            self.assertIsInstance(e.get("message"), str)
        self.assertEqual(sorted(f.get("id") for f in replies), sorted(f"r{i}" for i in range(n)),
                         "every frame gets exactly one ack or error, with its id")
        self.assertGreaterEqual(len(acks), 20, "the burst of 20 must pass")
        self.assertLessEqual(len(acks), 22, "no more than the burst (plus refill) may pass")
        self.assertEqual(sorted(f["event_id"] for f in acks), list(range(1, len(acks) + 1)))
        # Limited frames are not stored: the other member sees only the acked ones.
        msgs = await b.recv_n(len(acks), "message", timeout=5)
        self.assertEqual([m["event_id"] for m in msgs], list(range(1, len(acks) + 1)))
        self.assertEqual(sorted(m["content"] for m in msgs), sorted(f["id"] for f in acks))
        await b.expect_none("message", 0.5)
        # The bucket refills (10/s).
        await asyncio.sleep(1.2)
        await a.send({"type": "message", "message": "later", "id": "later"})
        ack = await a.recv(("ack", "error"), pred=lambda f: f.get("id") == "later")
        self.assertEqual(ack.get("type"), "ack", f"after a pause the user may send again: {ack}")
        self.assertEqual(ack.get("event_id"), len(acks) + 1)

    async def test_rate_limit_is_per_user_across_connections(self):
        r1, r2 = unique_room(), unique_room()
        uid = unique_uid()
        tok = token(uid, channels=[f"chat:{r1}", f"chat:{r2}"])
        c1 = await self.connect_ok(f"/ws/chat/{r1}/", tok)
        c2 = await self.connect_ok(f"/ws/chat/{r2}/", tok)
        for i in range(15):
            await c1.send({"type": "message", "message": "x", "id": f"a{i}"})
            await c2.send({"type": "message", "message": "y", "id": f"b{i}"})
        rep = (await c1.recv_n(15, ("ack", "error"), timeout=10) +
               await c2.recv_n(15, ("ack", "error"), timeout=10))
        acks = [f for f in rep if f["type"] == "ack"]
        errs = [f for f in rep if f["type"] == "error"]
        self.assertGreaterEqual(len(acks), 20)
        self.assertLessEqual(len(acks), 22, "the bucket is per user, shared by all connections")
        self.assertTrue(all(e.get("code") == "rate_limited" for e in errs), f"{errs}")

    async def test_rate_limit_applies_to_stored_events_only(self):
        room = unique_room()
        a = await self.join(room, unique_uid())
        b = await self.join(room, unique_uid())
        for i in range(30):
            await a.send({"type": "typing", "is_typing": i % 2 == 0, "id": f"t{i}"})
        for i in range(30):
            await a.send({"type": "ping", "id": f"p{i}"})
        rep = await a.recv_n(30, ("ack", "error"), timeout=10)
        self.assertFalse([f for f in rep if f["type"] == "error"],
                         "typing is not a stored event and is not rate limited")
        pongs = await a.recv_n(30, "pong", timeout=10)
        self.assertEqual(len(pongs), 30)
        # The full burst of stored events is still available.
        for i in range(20):
            await a.send({"type": "message", "message": f"m{i}", "id": f"m{i}"})
        rep = await a.recv_n(20, ("ack", "error"), timeout=10)
        errs = [f for f in rep if f["type"] == "error"]
        self.assertFalse(errs, f"typing/ping must not use up the message bucket: {errs}")

    async def test_other_stored_types_are_rate_limited(self):
        room = unique_room()
        a = await self.join(room, unique_uid(), role="admin")
        await a.send({"type": "message", "message": "target", "id": "t"})
        await a.recv("ack")
        for i in range(24):
            await a.send({"type": "reaction", "message_id": 1, "emoji": "👍", "id": f"x{i}"})
        rep = await a.recv_n(24, ("ack", "error"), timeout=10)
        errs = [f for f in rep if f["type"] == "error"]
        self.assertTrue(errs, "reactions are stored events and count towards the rate limit")
        self.assertTrue(all(e.get("code") == "rate_limited" for e in errs), f"{errs}")

    async def test_frame_too_big_1009(self):
        room = unique_room()
        a = await self.join(room, unique_uid())
        b = await self.join(room, unique_uid())
        # Under 64 KiB: a normal error (message too long), the connection stays.
        await a.send({"type": "message", "message": "x" * 60000, "id": "big"})
        err = await a.recv("error")
        self.assertEqual((err.get("code"), err.get("id")), ("invalid_message", "big"))
        # Over 64 KiB: closed with 1009.
        await a.send({"type": "message", "message": "x" * 70000, "id": "huge"})
        await a.expect_close(1009)
        # Others are not affected.
        await b.send({"type": "message", "message": "fine", "id": "f"})
        self.assertEqual((await b.recv("ack")).get("event_id"), 1)

    async def test_frame_length_header_too_big_1009(self):
        room = unique_room()
        uid = unique_uid()
        tok = token(uid, channels=[f"chat:{room}"])
        raw = await asyncio.to_thread(self.raw, f"/ws/chat/{room}/?token={tok}")
        self.assertEqual(raw.status, 101)
        first = await asyncio.to_thread(raw.recv_json, 5)
        self.assertEqual(first.get("type"), "connection_established")
        # Announce a 1 TiB text frame and send only its first bytes.
        raw.send_frame(OP_TEXT, b'{"type":"message","message":"', length_override=1 << 40)
        frames, state, code = await asyncio.to_thread(read_until_close, raw, 5)
        self.assertEqual((state, code), ("close", 1009),
                         "a frame announcing more than max_frame_bytes must be closed with 1009")

    async def test_binary_frame_keeps_connection(self):
        room = unique_room()
        a = await self.join(room, unique_uid())
        await a.ws.send(b"\x01" * 1000)
        err = await a.recv("error")
        self.assertEqual(err.get("code"), "invalid_message")
        await a.send({"type": "message", "message": "after binary", "id": "ab"})
        self.assertEqual((await a.recv("ack")).get("event_id"), 1)


class ConfiguredLimitsTest(SBTestCase):
    """Limits set on the command line: rate 1/s burst 5, 4096-byte frames."""
    server_overrides = ["--limits.rate_limit=1", "--limits.rate_limit_burst=5",
                        "--http.max_frame_bytes=4096"]

    async def test_configured_burst(self):
        room = unique_room()
        a = await self.join(room, unique_uid())
        for i in range(10):
            await a.send({"type": "message", "message": f"m{i}", "id": f"m{i}"})
        rep = await a.recv_n(10, ("ack", "error"), timeout=10)
        acks = [f for f in rep if f["type"] == "ack"]
        errs = [f for f in rep if f["type"] == "error"]
        self.assertIn(len(acks), (5, 6), f"burst 5: {rep}")
        self.assertTrue(all(e.get("code") == "rate_limited" for e in errs))
        await asyncio.sleep(1.2)
        await a.send({"type": "message", "message": "later", "id": "later"})
        r = await a.recv(("ack", "error"), pred=lambda f: f.get("id") == "later")
        self.assertEqual(r.get("type"), "ack", f"1 token/s refills: {r}")

    def frame_of_size(self, n, fid="sz"):
        head = '{"type":"message","id":"%s","message":"' % fid
        tail = '"}'
        text = head + "x" * (n - len(head) - len(tail)) + tail
        self.assertEqual(len(text.encode()), n)
        return text

    async def test_configured_max_frame_bytes(self):
        room = unique_room()
        a = await self.join(room, unique_uid())
        # Exactly at the limit: accepted (and refused as too long a message).
        await a.ws.send(self.frame_of_size(4096, "at"))
        err = await a.recv("error")
        self.assertEqual((err.get("code"), err.get("id")), ("invalid_message", "at"))
        # One byte over: 1009.
        await a.ws.send(self.frame_of_size(4097, "over"))
        await a.expect_close(1009)


class HeartbeatTest(SBTestCase):
    server_overrides = ["--limits.heartbeat_interval=1"]

    async def test_established_reports_interval(self):
        a = await self.join(unique_room(), unique_uid())
        self.assertEqual(a.established.get("heartbeat_interval"), 1)

    async def test_health_heartbeats(self):
        c = await self.connect("/ws/health/")
        t0 = time.monotonic()
        beats = []
        while time.monotonic() - t0 < 3.6:
            try:
                f = await c.recv("heartbeat", timeout=max(0.05, 3.6 - (time.monotonic() - t0)))
            except AssertionError:
                break
            beats.append((time.monotonic(), f))
        self.assertGreaterEqual(len(beats), 2, f"heartbeat every 1 s on /ws/health/: {beats}")
        self.assertLessEqual(len(beats), 6, f"heartbeats too frequent: {len(beats)} in 3.6 s")
        for _, f in beats:
            self.assertEqual(f.get("status"), "ok", f"{f}")
            self.assertTimestamp(f.get("timestamp"), "heartbeat timestamp")
        gaps = [b[0] - a[0] for a, b in zip(beats, beats[1:])]
        for g in gaps:
            self.assertTrue(0.4 <= g <= 2.0, f"heartbeat gaps should be ~1 s: {gaps}")
        # Still answers ping.
        await c.send({"type": "ping", "timestamp": 5})
        self.assertEqual((await c.recv("pong")).get("timestamp"), 5)

    async def test_server_sends_ws_pings_on_chat(self):
        room = unique_room()
        tok = token(unique_uid(), channels=[f"chat:{room}"])
        raw = await asyncio.to_thread(self.raw, f"/ws/chat/{room}/?token={tok}")
        self.assertEqual(raw.status, 101)

        def count_pings(duration):
            pings, frames = 0, []
            deadline = time.monotonic() + duration
            while time.monotonic() < deadline:
                try:
                    fin, op, payload = raw.recv_frame(max(0.01, deadline - time.monotonic()))
                except (socket.timeout, TimeoutError):
                    break
                if op == OP_PING:
                    pings += 1
                    raw.send_frame(harness.OP_PONG, payload)
                elif op == OP_CLOSE:
                    frames.append(("close", close_code_from_payload(payload)))
                    break
                else:
                    frames.append(json.loads(payload))
            return pings, frames

        pings, frames = await asyncio.to_thread(count_pings, 3.5)
        self.assertFalse([f for f in frames if isinstance(f, tuple)],
                         f"connection answering pings must stay open: {frames}")
        self.assertGreaterEqual(pings, 2, "server should ping about every heartbeat_interval")
        self.assertTrue(any(isinstance(f, dict) and f.get("type") == "connection_established"
                            for f in frames))
        self.assertFalse([f for f in frames if isinstance(f, dict) and f.get("type") == "heartbeat"],
                         "chat routes use WebSocket pings, not heartbeat frames")
        raw.send_json({"type": "ping", "timestamp": 9})
        pong = await asyncio.to_thread(raw.recv_json, 5)
        self.assertEqual((pong.get("type"), pong.get("timestamp")), ("pong", 9))

    async def test_websockets_client_stays_alive(self):
        room = unique_room()
        a = await self.join(room, unique_uid())
        await asyncio.sleep(3.5)   # the client library answers pings by itself
        self.assertTrue(a.ws.open, f"connection closed: {a.ws.close_code}")
        await a.send({"type": "message", "message": "still here", "id": "s"})
        self.assertEqual((await a.recv("ack")).get("event_id"), 1)

    async def test_unanswered_pings_close_connection(self):
        room = unique_room()
        watcher = await self.join(room, unique_uid())
        silent_uid = unique_uid()
        tok = token(silent_uid, channels=[f"chat:{room}"])
        raw = await asyncio.to_thread(self.raw, f"/ws/chat/{room}/?token={tok}")
        self.assertEqual(raw.status, 101)
        await watcher.recv("user_joined", pred=lambda f: f.get("user_id") == silent_uid)

        def wait_dead(limit):
            t0 = time.monotonic()
            pings = 0
            while time.monotonic() - t0 < limit:
                try:
                    fin, op, payload = raw.recv_frame(max(0.01, limit - (time.monotonic() - t0)))
                except (EOFError, ConnectionResetError):
                    return "eof", time.monotonic() - t0, pings
                except (socket.timeout, TimeoutError):
                    break
                if op == OP_PING:
                    pings += 1  # never answered
                elif op == OP_CLOSE:
                    return "close", time.monotonic() - t0, pings
            return "open", time.monotonic() - t0, pings

        state, after, pings = await asyncio.to_thread(wait_dead, 8.0)
        self.assertGreaterEqual(pings, 1, "server never pinged")
        self.assertIn(state, ("close", "eof"),
                      "a client that never answers pings must be disconnected within a few "
                      "heartbeat intervals (1 s)")
        # The other member sees the silent user leave.
        left = await watcher.recv("user_left", timeout=5,
                                  pred=lambda f: f.get("user_id") == silent_uid)
        self.assertNotIn("event_id", left)


class FractionalHeartbeatTest(SBTestCase):
    server_overrides = ["--limits.heartbeat_interval=0.5"]

    async def test_fractional_interval(self):
        a = await self.join(unique_room(), unique_uid())
        self.assertEqual(a.established.get("heartbeat_interval"), 0.5)
        c = await self.connect("/ws/health/")
        t0 = time.monotonic()
        beats = 0
        while time.monotonic() - t0 < 2.6:
            try:
                await c.recv("heartbeat", timeout=max(0.05, 2.6 - (time.monotonic() - t0)))
            except AssertionError:
                break
            beats += 1
        self.assertGreaterEqual(beats, 4, "heartbeat every 0.5 s")
        self.assertLessEqual(beats, 8)


class SlowConsumerTest(SBTestCase):
    server_overrides = ["--limits.outbound_max_frames=64", "--limits.outbound_max_bytes=65536",
                        "--limits.rate_limit=1000000", "--limits.rate_limit_burst=1000000",
                        "--limits.slow_consumer_grace_ms=30000"]

    async def test_slow_consumer_4009(self):
        room = unique_room("slow")
        uf, usend, uslow = unique_uid(), unique_uid(), unique_uid()
        fast = await self.join(room, uf, label="fast")
        sender = await self.join(room, usend, label="sender")
        tok = token(uslow, channels=[f"chat:{room}"])
        slow = await asyncio.to_thread(self.raw, f"/ws/chat/{room}/?token={tok}", rcvbuf=4096)
        self.assertEqual(slow.status, 101)
        await fast.recv("user_joined", pred=lambda f: f.get("user_id") == uslow)

        body = "x" * 1900
        batch, max_total = 16, 4000
        sent = 0
        fast_ids = []
        slow_left = False
        while sent < max_total:
            for i in range(batch):
                await sender.send({"type": "message", "message": f"{sent + i}:{body}"})
            sent += batch
            got = await fast.recv_n(batch, "message", timeout=10)
            fast_ids += [m["event_id"] for m in got]
            await sender.recv_n(batch, "message", timeout=10)
            if fast.take("user_left", pred=lambda f: f.get("user_id") == uslow):
                slow_left = True
                break
        # A few more after the slow client was cut off (or we gave up).
        for i in range(batch):
            await sender.send({"type": "message", "message": f"{sent + i}:{body}"})
        sent += batch
        got = await fast.recv_n(batch, "message", timeout=10)
        fast_ids += [m["event_id"] for m in got]
        self.assertEqual(fast_ids, list(range(1, sent + 1)),
                         "the fast member must receive every event, in order, with no holes")
        self.assertFalse(fast.take("error") + sender.take("error"))

        # Now the slow client reads what it was sent: a prefix, then close 4009.
        frames, state, code = await asyncio.to_thread(read_until_close, slow, 20)
        msg_ids = [f["event_id"] for f in frames if f.get("type") == "message"]
        self.assertEqual((state, code), ("close", 4009),
                         f"slow consumer must be closed with 4009 (got {state} {code}) after "
                         f"{len(msg_ids)} of {sent} messages; user_left seen: {slow_left}")
        self.assertLess(len(msg_ids), sent, "the slow client cannot have received everything")
        if msg_ids:
            self.assertEqual(msg_ids, list(range(msg_ids[0], msg_ids[0] + len(msg_ids))),
                             "what the slow client did receive has no holes")
            self.assertEqual(msg_ids[0], 1)

        # Answer the close like a real client would.
        try:
            slow.send_frame(harness.OP_CLOSE, b"\x0f\xa9")
        except OSError:
            pass
        slow.close()

        # The room still works for the others, and the slow user is gone.
        await sender.send({"type": "message", "message": "after", "id": "after"})
        ack = await sender.recv("ack", timeout=5)
        self.assertEqual(ack.get("event_id"), sent + 1)
        await fast.recv("message", pred=lambda f: f.get("event_id") == sent + 1)
        left = slow_left or bool(await fast.recv(
            "user_left", timeout=5, pred=lambda f: f.get("user_id") == uslow))
        self.assertTrue(left)
        await fast.send({"type": "presence", "id": "pr"})
        p = await fast.recv("presence")
        users = {str(u.get("user_id")) for u in p.get("users", [])}
        self.assertEqual(users, {str(uf), str(usend)}, f"presence after 4009: {p}")
        print(f"\n  slow consumer: cut off after {len(msg_ids)} of {sent} messages; "
              f"user_left seen while flooding: {slow_left}", file=sys.stderr)


if __name__ == "__main__":
    harness.main()
