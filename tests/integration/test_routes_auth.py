#!/usr/bin/python3
"""Routes, connection_established, Origin checks and token handling
(PROTOCOL sections 2, 3, 5 and 10)."""

import time
import uuid

import harness
from harness import SBTestCase, token, mint, unique_room, unique_uid, unique_suid, SECRET, NODE_ID

ORIGINS = '--http.allowed_origins=["http://ok.example","http://also-ok.example"]'


class RoutesTest(SBTestCase):
    server_overrides = [ORIGINS]

    def check_established(self, est, user_id, role, channels):
        self.assertEqual(est["type"], "connection_established")
        self.assertSameId(est.get("user_id"), user_id, "connection_established.user_id")
        if role is not None:
            self.assertEqual(est.get("role"), role)
        self.assertIn("role", est)
        self.assertEqual(est.get("node"), NODE_ID)
        hb = est.get("heartbeat_interval")
        self.assertIsInstance(hb, (int, float), f"heartbeat_interval must be a number: {est}")
        self.assertNotIsInstance(hb, bool)
        self.assertEqual(hb, 25, "default heartbeat_interval is 25 s (configs/dev.json)")
        chans = est.get("channels")
        self.assertIsInstance(chans, list, f"channels must be a list: {est}")
        names = []
        for c in chans:
            self.assertIsInstance(c, dict, f"channels entries are objects: {chans}")
            self.assertIsInstance(c.get("channel"), str)
            self.assertIn("epoch", c, f"channels entry without epoch: {c}")
            self.assertIsInstance(c["epoch"], str, f"epoch is an opaque string: {c}")
            self.assertTrue(c["epoch"], f"epoch must not be empty: {c}")
            self.assertIsInstance(c.get("last_event_id"), int, f"last_event_id: {c}")
            self.assertNotIsInstance(c.get("last_event_id"), bool)
            names.append(c["channel"])
        self.assertEqual(sorted(names), sorted(channels), f"channels of {est}")
        return {c["channel"]: c for c in chans}

    async def test_chat_numeric_user_id(self):
        room, uid = unique_room(), unique_uid()
        tok = token(uid, name="Alice", role="cadet", channels=[f"chat:{room}"])
        c = await self.connect_ok(f"/ws/chat/{room}/", tok)
        chans = self.check_established(c.established, uid, "cadet", [f"chat:{room}"])
        self.assertEqual(chans[f"chat:{room}"]["last_event_id"], 0,
                         "a new channel starts at last_event_id 0")

    async def test_chat_string_user_id(self):
        room, uid = unique_room(), unique_suid()
        tok = token(uid, role="mentor", channels=[f"chat:{room}"])
        c = await self.connect_ok(f"/ws/chat/{room}/", tok)
        self.check_established(c.established, uid, "mentor", [f"chat:{room}"])

    async def test_numeric_looking_string_user_id_stays_string(self):
        room = unique_room()
        uid = str(unique_uid())
        tok = token(uid, channels=[f"chat:{room}"])
        c = await self.connect_ok(f"/ws/chat/{room}/", tok)
        self.assertSameId(c.established.get("user_id"), uid)

    async def test_chat_without_trailing_slash(self):
        room, uid = unique_room(), unique_uid()
        tok = token(uid, channels=[f"chat:{room}"])
        c = await self.connect_ok(f"/ws/chat/{room}", tok)
        self.check_established(c.established, uid, None, [f"chat:{room}"])

    async def test_sessions_route(self):
        sid = str(uuid.uuid4())
        uid = unique_uid()
        tok = token(uid, role="cadet", channels=["session:*"])
        c = await self.connect_ok(f"/ws/sessions/{sid}/", tok)
        self.check_established(c.established, uid, "cadet", [f"session:{sid}"])
        c2 = await self.connect_ok(f"/ws/sessions/{sid}", tok)
        self.check_established(c2.established, uid, "cadet", [f"session:{sid}"])

    async def test_notifications_route(self):
        uid = unique_uid()
        c = await self.connect_ok("/ws/notifications/", token(uid, role="cadet"))
        self.check_established(c.established, uid, "cadet", [f"user:{uid}"])
        suid = unique_suid()
        c2 = await self.connect_ok("/ws/notifications", token(suid))
        self.check_established(c2.established, suid, None, [f"user:{suid}"])

    async def test_updates_route(self):
        uid = unique_uid()
        c = await self.connect_ok("/ws/updates/", token(uid, role="cadet"))
        self.check_established(c.established, uid, "cadet", [f"user:{uid}", "role:cadet"])
        c2 = await self.connect_ok("/ws/updates", token(uid, role="cadet"))
        self.check_established(c2.established, uid, "cadet", [f"user:{uid}", "role:cadet"])

    async def test_dashboard_route_admin_and_mentor(self):
        for role in ("admin", "mentor"):
            uid = unique_uid()
            c = await self.connect_ok("/ws/dashboard/", token(uid, role=role))
            self.check_established(c.established, uid, role, ["dashboard"])
        c = await self.connect_ok("/ws/dashboard", token(unique_uid(), role="admin"))
        self.check_established(c.established, c.established["user_id"], "admin", ["dashboard"])

    async def test_leaderboard_route_any_user(self):
        uid = unique_uid()
        c = await self.connect_ok("/ws/leaderboard/", token(uid))
        self.check_established(c.established, uid, None, ["leaderboard"])
        uid2 = unique_suid()
        c2 = await self.connect_ok("/ws/leaderboard", token(uid2, role="cadet"))
        self.check_established(c2.established, uid2, "cadet", ["leaderboard"])

    async def test_multiplex_route(self):
        uid = unique_uid()
        c = await self.connect_ok("/ws/", token(uid, role="cadet"))
        self.check_established(c.established, uid, "cadet", [])

    async def test_health_route_without_token(self):
        for path in ("/ws/health/", "/ws/health"):
            c = await self.connect(path)
            await c.send({"type": "ping", "timestamp": 1234567, "id": "hp"})
            pong = await c.recv("pong", timeout=5)
            self.assertEqual(pong.get("timestamp"), 1234567)
            self.assertEqual(pong.get("id"), "hp")
            self.assertFalse(c.take("error"), "health route must not send errors for ping")

    async def test_unknown_paths_404(self):
        tok = token(unique_uid(), role="admin", channels=["chat:*"])
        for path in ("/ws/nope/", "/ws/nope", "/ws/chat/a/b/", "/nothing-here",
                     "/ws/chatroom/x/", "/ws/notifications/extra/"):
            with self.subTest(path=path):
                await self.expect_http_status(path, 404, tok)

    async def test_origin_not_allowed_403(self):
        room, uid = unique_room(), unique_uid()
        tok = token(uid, channels=[f"chat:{room}"])
        await self.expect_http_status(f"/ws/chat/{room}/", 403, tok, origin="http://evil.example")
        await self.expect_http_status("/ws/updates/", 403, tok, origin="http://evil.example")
        await self.expect_http_status("/ws/health/", 403, None, origin="http://evil.example")
        # Origin matching is exact: a different port or scheme is another origin.
        await self.expect_http_status(f"/ws/chat/{room}/", 403, tok,
                                      origin="http://ok.example:8080")
        await self.expect_http_status(f"/ws/chat/{room}/", 403, tok,
                                      origin="https://ok.example")

    async def test_origin_allowed(self):
        room, uid = unique_room(), unique_uid()
        tok = token(uid, channels=[f"chat:{room}"])
        c = await self.connect_ok(f"/ws/chat/{room}/", tok, origin="http://ok.example")
        self.check_established(c.established, uid, None, [f"chat:{room}"])
        c = await self.connect_ok(f"/ws/chat/{room}/", tok, origin="http://also-ok.example")
        self.check_established(c.established, uid, None, [f"chat:{room}"])

    async def test_no_origin_allowed(self):
        room, uid = unique_room(), unique_uid()
        tok = token(uid, channels=[f"chat:{room}"])
        c = await self.connect_ok(f"/ws/chat/{room}/", tok)  # websockets sends no Origin
        self.check_established(c.established, uid, None, [f"chat:{room}"])

    async def test_last_event_id_and_epoch_in_established(self):
        room = unique_room()
        a = await self.join(room, unique_uid(), name="A")
        ep = a.established["channels"][0]["epoch"]
        for i in range(3):
            await a.send({"type": "message", "message": f"m{i}", "id": f"e{i}"})
            ack = await a.recv("ack", pred=lambda f, i=i: f.get("id") == f"e{i}")
            self.assertEqual(ack.get("event_id"), i + 1)
        b = await self.join(room, unique_uid(), name="B")
        ch = b.established["channels"][0]
        self.assertEqual(ch["channel"], f"chat:{room}")
        self.assertEqual(ch["last_event_id"], 3, "last_event_id is the newest event id")
        self.assertEqual(ch["epoch"], ep, "epoch must not change while the channel is alive")


class AuthTest(SBTestCase):
    """Close codes 4001-4004 and the ways a token can be presented."""

    async def test_token_in_query(self):
        room, uid = unique_room(), unique_uid()
        c = await self.connect_ok(f"/ws/chat/{room}/", token(uid, channels=[f"chat:{room}"]))
        self.assertSameId(c.established["user_id"], uid)

    async def test_token_in_bearer_header(self):
        room, uid = unique_room(), unique_uid()
        tok = token(uid, channels=[f"chat:{room}"])
        c = await self.connect_ok(f"/ws/chat/{room}/", tok, via="header")
        self.assertSameId(c.established["user_id"], uid)
        c = await self.connect_ok("/ws/updates/", token(uid, role="cadet"), via="header")
        self.assertSameId(c.established["user_id"], uid)

    async def test_bad_token_in_bearer_header(self):
        room, uid = unique_room(), unique_uid()
        tok = token(uid, channels=[f"chat:{room}"], secret="wrong-secret")
        await self.expect_refused(f"/ws/chat/{room}/", tok, 4003, via="header")

    async def test_sub_fallback(self):
        room = unique_room()
        sub = unique_suid("sub")
        tok = token(sub=sub, channels=[f"chat:{room}"])
        c = await self.connect_ok(f"/ws/chat/{room}/", tok)
        self.assertSameId(c.established["user_id"], sub, "user id taken from sub")
        c = await self.connect_ok("/ws/notifications/", tok)
        self.assertEqual([x["channel"] for x in c.established["channels"]], [f"user:{sub}"])

    async def test_user_id_wins_over_sub(self):
        uid = unique_uid()
        tok = token(uid, sub="someone-else")
        c = await self.connect_ok("/ws/notifications/", tok)
        self.assertSameId(c.established["user_id"], uid)
        self.assertEqual([x["channel"] for x in c.established["channels"]], [f"user:{uid}"])

    async def test_token_type_access_ok_and_absent_ok(self):
        uid = unique_uid()
        c = await self.connect_ok("/ws/leaderboard/", token(uid, token_type="access"))
        self.assertSameId(c.established["user_id"], uid)
        c = await self.connect_ok("/ws/leaderboard/", token(uid, token_type=None))
        self.assertSameId(c.established["user_id"], uid)

    async def test_4001_no_token(self):
        room = unique_room()
        for path in (f"/ws/chat/{room}/", "/ws/updates/", "/ws/notifications/",
                     "/ws/dashboard/", "/ws/leaderboard/", "/ws/"):
            with self.subTest(path=path):
                await self.expect_refused(path, None, 4001)

    async def test_4002_no_user_id(self):
        room = unique_room()
        tok = token(channels=[f"chat:{room}"], role="admin")  # neither user_id nor sub
        await self.expect_refused(f"/ws/chat/{room}/", tok, 4002)
        await self.expect_refused("/ws/updates/", tok, 4002)
        await self.expect_refused("/ws/leaderboard/", tok, 4002, via="header")

    async def test_4003_bad_signature(self):
        room, uid = unique_room(), unique_uid()
        tok = token(uid, channels=[f"chat:{room}"], secret="not-the-secret")
        await self.expect_refused(f"/ws/chat/{room}/", tok, 4003)
        # Tampered payload with the original signature.
        good = token(uid, channels=[f"chat:{room}"])
        h, p, s = good.split(".")
        evil = token(uid, role="admin", channels=[f"chat:{room}"])
        await self.expect_refused("/ws/dashboard/", f"{h}.{evil.split('.')[1]}.{s}", 4003)

    async def test_4003_expired(self):
        room, uid = unique_room(), unique_uid()
        tok = token(uid, channels=[f"chat:{room}"], ttl=-60)
        await self.expect_refused(f"/ws/chat/{room}/", tok, 4003)

    async def test_4003_missing_exp(self):
        room, uid = unique_room(), unique_uid()
        tok = token(uid, channels=[f"chat:{room}"], exp=None)
        await self.expect_refused(f"/ws/chat/{room}/", tok, 4003)

    async def test_4003_refresh_token(self):
        room, uid = unique_room(), unique_uid()
        tok = token(uid, channels=[f"chat:{room}"], token_type="refresh")
        await self.expect_refused(f"/ws/chat/{room}/", tok, 4003)

    async def test_4003_not_yet_valid(self):
        uid = unique_uid()
        tok = token(uid, nbf=int(time.time()) + 3600)
        await self.expect_refused("/ws/leaderboard/", tok, 4003)

    async def test_4003_garbage_tokens(self):
        room = unique_room()
        uid = unique_uid()
        unsigned = mint({"user_id": uid, "exp": int(time.time()) + 3600},
                        header={"alg": "none", "typ": "JWT"}).rsplit(".", 1)[0] + "."
        hs512 = mint({"user_id": uid, "exp": int(time.time()) + 3600},
                     header={"alg": "HS512", "typ": "JWT"})
        for bad in ("garbage", "a.b.c", "abc.def", "....", "eyJhbGciOiJIUzI1NiJ9.!!!.xyz",
                    unsigned, hs512):
            with self.subTest(token=bad):
                await self.expect_refused("/ws/leaderboard/", bad, 4003)

    async def test_4004_chat_room_not_in_claim(self):
        room, other = unique_room(), unique_room()
        uid = unique_uid()
        tok = token(uid, channels=[f"chat:{other}"])
        await self.expect_refused(f"/ws/chat/{room}/", tok, 4004)
        # No channels claim at all.
        await self.expect_refused(f"/ws/chat/{room}/", token(uid), 4004)
        # Roles do not grant chat rooms.
        await self.expect_refused(f"/ws/chat/{room}/", token(uid, role="admin"), 4004)
        # The user can still open the room the token names.
        c = await self.connect_ok(f"/ws/chat/{other}/", tok)
        self.assertEqual(c.established["channels"][0]["channel"], f"chat:{other}")

    async def test_prefix_patterns(self):
        uid = unique_uid()
        base = unique_room("pfx")
        tok = token(uid, channels=[f"chat:{base}*"])
        c = await self.connect_ok(f"/ws/chat/{base}-1/", tok)
        self.assertEqual(c.established["channels"][0]["channel"], f"chat:{base}-1")
        await self.expect_refused(f"/ws/chat/x{base}/", tok, 4004)
        c = await self.connect_ok(f"/ws/chat/{unique_room()}/", token(uid, channels=["chat:*"]))
        # A chat pattern does not grant sessions.
        await self.expect_refused(f"/ws/sessions/{uuid.uuid4()}/", token(uid, channels=["chat:*"]),
                                  4004)

    async def test_4004_session_not_in_claim(self):
        uid = unique_uid()
        sid = str(uuid.uuid4())
        await self.expect_refused(f"/ws/sessions/{sid}/",
                                  token(uid, channels=[f"session:{uuid.uuid4()}"]), 4004)
        c = await self.connect_ok(f"/ws/sessions/{sid}/", token(uid, channels=[f"session:{sid}"]))
        self.assertEqual(c.established["channels"][0]["channel"], f"session:{sid}")

    async def test_4004_dashboard_roles(self):
        await self.expect_refused("/ws/dashboard/", token(unique_uid(), role="cadet"), 4004)
        await self.expect_refused("/ws/dashboard/", token(unique_uid()), 4004)
        await self.expect_refused("/ws/dashboard/", token(unique_uid(), role="moderator"), 4004)

    async def test_channels_claim_grants_read_access(self):
        uid = unique_uid()
        c = await self.connect_ok("/ws/dashboard/", token(uid, role="cadet", channels=["dashboard"]))
        self.assertEqual([x["channel"] for x in c.established["channels"]], ["dashboard"])

    async def test_refused_then_valid_on_fresh_connection(self):
        # A refusal does not poison anything: the same user connects fine afterwards.
        room, uid = unique_room(), unique_uid()
        await self.expect_refused(f"/ws/chat/{room}/", token(uid), 4004)
        await self.expect_refused(f"/ws/chat/{room}/", None, 4001)
        c = await self.connect_ok(f"/ws/chat/{room}/", token(uid, channels=[f"chat:{room}"]))
        self.assertSameId(c.established["user_id"], uid)


if __name__ == "__main__":
    harness.main()
