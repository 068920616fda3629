#!/usr/bin/python3
"""Tokens expire on live connections (docs/protocol.md section 11): a
WebSocket is closed with 4003 when its token's exp passes and an SSE stream
ends with `event: close` (4003), unless a `refresh` frame brought a new valid
token for the same user, role and channels first (answered `refreshed`)."""

import json
import time

import harness
from harness import SBTestCase, SSEStream, api_publish, token, unique_room, unique_uid


class TokenExpiryTest(SBTestCase):
    async def open_room(self, ttl, **claims):
        uid = unique_uid()
        room = unique_room()
        claims.setdefault("channels", [f"chat:{room}"])
        c = await self.connect_ok(f"/ws/chat/{room}/", token(uid, ttl=ttl, **claims))
        return c, uid, room

    async def test_socket_closed_with_4003_at_expiry(self):
        c, _, _ = await self.open_room(ttl=2)
        await c.send({"type": "ping", "id": "p"})
        await c.recv("pong")
        started = time.monotonic()
        await c.expect_close(4003, timeout=6)
        self.assertLess(time.monotonic() - started, 4, "closed at exp, not at a later heartbeat")

    async def test_refresh_extends_the_connection(self):
        c, uid, room = await self.open_room(ttl=2)
        exp = int(time.time()) + 3600
        await c.send({"type": "refresh", "id": "r1",
                      "token": token(uid, exp=exp, channels=[f"chat:{room}"])})
        self.assertEqual(await c.recv("refreshed"), {"type": "refreshed", "exp": exp, "id": "r1"})
        await c.expect_none(duration=3.5, pred=lambda f: True)
        await c.send({"type": "message", "message": "still here", "id": "m1"})
        self.assertEqual((await c.recv("ack"))["id"], "m1")

    async def test_refresh_with_another_users_token_is_refused(self):
        c, _, room = await self.open_room(ttl=3)
        other = token(unique_uid(), channels=[f"chat:{room}"])
        await c.send({"type": "refresh", "id": "r2", "token": other})
        err = await c.recv("error")
        self.assertEqual((err["code"], err["id"]), ("forbidden", "r2"))
        await c.expect_close(4003, timeout=6)

    async def test_refresh_with_invalid_tokens_is_refused(self):
        c, uid, room = await self.open_room(ttl=3)
        chans = [f"chat:{room}"]
        for i, bad in enumerate([token(uid, channels=chans, secret="another-secret-0123456789abcdef"),
                                 token(uid, channels=chans, ttl=-10),
                                 token(uid, channels=chans, token_type="refresh"),
                                 "not.a.jwt"]):
            await c.send({"type": "refresh", "id": f"bad{i}", "token": bad})
            err = await c.recv("error")
            self.assertEqual((err["code"], err["id"]), ("invalid_token", f"bad{i}"))
        await c.send({"type": "refresh", "id": "none"})
        self.assertEqual((await c.recv("error"))["code"], "invalid_message")
        await c.expect_close(4003, timeout=6)

    async def test_refresh_must_keep_role_and_channels(self):
        c, uid, room = await self.open_room(ttl=3600, role="cadet")
        await c.send({"type": "refresh", "id": "lost",
                      "token": token(uid, role="cadet", channels=["chat:elsewhere"])})
        err = await c.recv("error")
        self.assertEqual(err["code"], "forbidden")
        self.assertIn(f"chat:{room}", err["message"])
        await c.send({"type": "refresh", "id": "role",
                      "token": token(uid, role="admin", channels=[f"chat:{room}"])})
        self.assertEqual((await c.recv("error"))["code"], "forbidden")

    async def test_refreshed_channels_govern_later_subscribes(self):
        uid = unique_uid()
        a, b = unique_room("a"), unique_room("b")
        c = await self.connect_ok("/ws/", token(uid, ttl=3600, channels=[f"chat:{a}"]))
        await c.send({"type": "subscribe", "channel": f"chat:{a}", "id": "s1"})
        await c.recv("subscribed")
        await c.send({"type": "subscribe", "channel": f"chat:{b}", "id": "s2"})
        self.assertEqual((await c.recv("error"))["code"], "forbidden")
        await c.send({"type": "refresh", "id": "r",
                      "token": token(uid, channels=[f"chat:{a}", f"chat:{b}"])})
        await c.recv("refreshed")
        await c.send({"type": "subscribe", "channel": f"chat:{b}", "id": "s3"})
        self.assertEqual((await c.recv("subscribed"))["channel"], f"chat:{b}")

    def open_sse(self, tok, query=""):
        s = SSEStream(self.server.port, f"/api/events?token={tok}{query}", {})
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200, s.head)
        return s

    async def test_sse_stream_ends_at_expiry(self):
        s = self.open_sse(token(unique_uid(), ttl=2))
        ev = s.next_event(6, pred=lambda e: e.get("event") == "close")
        self.assertIsNotNone(ev, "the stream must end with event: close")
        self.assertEqual(json.loads(ev["data"]), {"code": 4003, "reason": "token expired"})
        self.assertIsNone(s.next_event(2), "nothing after the close event")
        self.assertTrue(s.eof, "the server closes the stream")

    async def test_sse_positions_in_the_query(self):
        uid = unique_uid()
        for n in range(3):
            self.assertEqual(api_publish(self.server.port, f"user:{uid}", "notification",
                                         {"n": n}).status, 200)
        s = self.open_sse(token(uid), f"&last_event_id=user%3A{uid}%3D1")
        ev = s.next_event(5, pred=lambda e: e.get("event") == "notification")
        frame = json.loads(ev["data"])
        self.assertEqual((frame["event_id"], frame.get("replayed")), (2, True))


if __name__ == "__main__":
    harness.main()
