#!/usr/bin/python3
"""The server API (PROTOCOL section 8 and 10) and the routes fed by it
(section 3 and 4): /api/publish, /api/broadcast, /api/history, /api/presence,
/api/disconnect, /health, /metrics, API keys, bad bodies, keep-alive;
/ws/notifications/ filters, /ws/updates/, /ws/dashboard/, /ws/leaderboard/,
/ws/ with user channels, read-only namespaces."""

import asyncio
import http.client
import re

import harness
from harness import (SBTestCase, token, unique_room, unique_uid, unique_suid, http_request,
                     api_publish, api_history, API_KEY, NODE_ID, HOST)

FAST = ("--limits.rate_limit=100000", "--limits.rate_limit_burst=100000")
APP_EVENT_KEYS = {"type", "channel", "event_id", "data", "timestamp"}


class ApiBase(SBTestCase):
    server_overrides = FAST

    async def api(self, method, path, body=None, **kw):
        return await asyncio.to_thread(http_request, self.server.port, method, path, body, **kw)

    async def publish(self, channel, type_, data, expect_status=200):
        r = await asyncio.to_thread(api_publish, self.server.port, channel, type_, data)
        self.assertEqual(r.status, expect_status, f"POST /api/publish {channel} {type_}: {r}")
        return r.json

    async def history(self, channel, **params):
        r = await asyncio.to_thread(api_history, self.server.port, channel, **params)
        self.assertEqual(r.status, 200, f"GET /api/history {channel} {params}: {r}")
        return r.json

    def check_app_event(self, f, channel, type_, event_id, data):
        self.assertEqual(f.get("type"), type_, f"{f}")
        self.assertEqual(f.get("channel"), channel, f"{f}")
        self.assertEqual(f.get("event_id"), event_id, f"{f}")
        self.assertEqual(f.get("data"), data, f"{f}")
        self.assertTimestamp(f.get("timestamp"))
        self.assertEqual(set(f) - {"replayed", "id"}, APP_EVENT_KEYS,
                         f"an app event is {{type, channel, event_id, data, timestamp}}: {f}")

    def check_error_body(self, r, status):
        self.assertEqual(r.status, status, f"{r}")
        self.assertIsInstance(r.json, dict, f"error answers are JSON objects: {r}")
        self.assertIsInstance(r.json.get("error"), str, f"{r}")
        self.assertIsInstance(r.json.get("message"), str, f"{r}")


class PublishTest(ApiBase):

    async def test_publish_to_user_and_subscriber_receives(self):
        uid = unique_uid()
        role = unique_room("rl")
        c = await self.connect_ok("/ws/updates/", token(uid, role=role))
        chans = {x["channel"]: x for x in c.established["channels"]}
        data = {"course": "c1", "grade": 17.5, "nested": {"a": [1, "x", None, True]}, "u": "é😀"}
        r = await self.publish(f"user:{uid}", "grade_update", data)
        self.assertEqual(r.get("channel"), f"user:{uid}")
        self.assertEqual(r.get("event_id"), 1)
        self.assertEqual(r.get("epoch"), chans[f"user:{uid}"]["epoch"],
                         "the answer's epoch is the channel's epoch")
        f = await c.recv("grade_update")
        self.check_app_event(f, f"user:{uid}", "grade_update", 1, data)
        r2 = await self.publish(f"user:{uid}", "notification", {"text": "hi"})
        self.assertEqual((r2.get("event_id"), r2.get("epoch")), (2, r.get("epoch")))
        f = await c.recv("notification")
        self.check_app_event(f, f"user:{uid}", "notification", 2, {"text": "hi"})
        r3 = await self.publish(f"role:{role}", "attendance_update", {"n": 3})
        self.assertEqual(r3.get("event_id"), 1, "event ids are per channel")
        f = await c.recv("attendance_update")
        self.check_app_event(f, f"role:{role}", "attendance_update", 1, {"n": 3})
        # Someone else's updates connection gets none of it.
        other = await self.connect_ok("/ws/updates/", token(unique_uid(), role=unique_room("rl")))
        await self.publish(f"user:{uid}", "notification", {"text": "private"})
        await c.recv("notification", pred=lambda x: x.get("event_id") == 3)
        await other.expect_none("notification", 0.3)

    async def test_publish_to_chat_shares_event_ids_with_messages(self):
        room = unique_room()
        ch = f"chat:{room}"
        a = await self.connect_ok(f"/ws/chat/{room}/", token(unique_uid(), channels=[ch]))
        await a.send({"type": "message", "message": "first", "id": "f"})
        self.assertEqual((await a.recv("ack")).get("event_id"), 1)
        r = await self.publish(ch, "notification", {"k": "v"})
        self.assertEqual(r.get("event_id"), 2)
        f = await a.recv("notification")
        self.check_app_event(f, ch, "notification", 2, {"k": "v"})
        await a.send({"type": "message", "message": "third", "id": "t"})
        self.assertEqual((await a.recv("ack", pred=lambda x: x.get("id") == "t"))
                         .get("event_id"), 3)
        b = await self.connect_ok(f"/ws/chat/{room}/", token(unique_uid(), channels=[ch]))
        self.assertEqual(b.established["channels"][0]["last_event_id"], 3)

    async def test_published_event_is_durable_in_history_and_replay(self):
        uid = unique_uid()
        ch = f"user:{uid}"
        r = await self.publish(ch, "grade_update", {"g": 1})
        await self.publish(ch, "grade_update", {"g": 2})
        c = await self.connect_ok("/ws/notifications/", token(uid), query="last_event_id=0")
        est = c.established["channels"][0]
        self.assertEqual((est["channel"], est["last_event_id"], est["epoch"]),
                         (ch, 2, r["epoch"]))
        f1, f2 = await c.recv_n(2, "grade_update")
        self.check_app_event(f1, ch, "grade_update", 1, {"g": 1})
        self.check_app_event(f2, ch, "grade_update", 2, {"g": 2})
        self.assertIs(f1.get("replayed"), True)
        rc = await c.recv("replay_complete")
        self.assertEqual((rc.get("channel"), rc.get("last_event_id"), rc.get("gap")),
                         (ch, 2, False))

    async def test_replay_request_positions_on_updates(self):
        uid = unique_uid()
        role = unique_room("rl")
        uc, rc_ = f"user:{uid}", f"role:{role}"
        for i in range(3):
            await self.publish(uc, "notification", {"u": i})
        for i in range(2):
            await self.publish(rc_, "grade_update", {"r": i})
        c = await self.connect_ok("/ws/updates/", token(uid, role=role))
        est = {x["channel"]: x for x in c.established["channels"]}
        self.assertEqual((est[uc]["last_event_id"], est[rc_]["last_event_id"]), (3, 2))
        await c.send({"type": "replay_request", "positions": {uc: 1, rc_: 0}, "id": "rp"})
        done = {}
        got = []
        while len(done) < 2:
            f = await c.recv(pred=lambda x: x.get("type") == "replay_complete"
                             or "event_id" in x and x.get("type") != "ack")
            if f["type"] == "replay_complete":
                self.assertEqual(f.get("id"), "rp")
                done[f["channel"]] = f
            else:
                self.assertIs(f.get("replayed"), True, f"{f}")
                got.append((f["channel"], f["event_id"], f["data"]))
        self.assertEqual([g for g in got if g[0] == uc],
                         [(uc, 2, {"u": 1}), (uc, 3, {"u": 2})])
        self.assertEqual([g for g in got if g[0] == rc_],
                         [(rc_, 1, {"r": 0}), (rc_, 2, {"r": 1})])
        self.assertEqual((done[uc]["last_event_id"], done[uc]["gap"],
                          done[uc]["epoch"]), (3, False, est[uc]["epoch"]))
        self.assertEqual((done[rc_]["last_event_id"], done[rc_]["gap"]), (2, False))

    async def test_broadcast(self):
        u1, u2 = unique_uid(), unique_suid()
        role = unique_room("rl")
        c1 = await self.connect_ok("/ws/updates/", token(u1, role=role))
        c2 = await self.connect_ok("/ws/notifications/", token(u2))
        await self.publish(f"user:{u1}", "notification", {"first": True})
        chans = [f"user:{u1}", f"user:{u2}", f"role:{role}"]
        r = await self.api("POST", "/api/broadcast",
                           {"channels": chans, "type": "leaderboard_update", "data": {"x": 1}})
        self.assertEqual(r.status, 200, f"{r}")
        results = r.json.get("results")
        self.assertIsInstance(results, list, f"{r}")
        self.assertEqual([(x.get("channel"), x.get("event_id")) for x in results],
                         [(chans[0], 2), (chans[1], 1), (chans[2], 1)], f"{r}")
        got = await c1.recv_n(2, "leaderboard_update")
        self.assertEqual(sorted((f["channel"], f["event_id"]) for f in got),
                         sorted([(chans[0], 2), (chans[2], 1)]))
        for f in got:
            self.assertEqual(f.get("data"), {"x": 1})
        f = await c2.recv("leaderboard_update")
        self.check_app_event(f, chans[1], "leaderboard_update", 1, {"x": 1})


class HistoryApiTest(ApiBase):

    async def test_since_before_limit_has_more(self):
        uid = unique_uid()
        ch = f"user:{uid}"
        c = await self.connect_ok("/ws/notifications/", token(uid))
        epoch = None
        for i in range(7):
            r = await self.publish(ch, "notification", {"i": i})
            self.assertEqual(r["event_id"], i + 1)
            epoch = r["epoch"]
        live = {f["event_id"]: f for f in await c.recv_n(7, "notification")}

        def ids(h):
            return [e.get("event_id") for e in h.get("events", [])]

        h = await self.history(ch)
        self.assertEqual((h.get("channel"), h.get("epoch")), (ch, epoch))
        self.assertEqual(ids(h), [1, 2, 3, 4, 5, 6, 7], "newest last")
        self.assertIs(h.get("has_more"), False)
        for e in h["events"]:
            self.assertEqual({k: v for k, v in e.items() if k != "replayed"}, live[e["event_id"]],
                             "history events are the event frames")
        h = await self.history(ch, since=0, limit=3)
        self.assertEqual((ids(h), h.get("has_more")), ([1, 2, 3], True),
                         "since: the oldest `limit` events after it")
        h = await self.history(ch, since=5)
        self.assertEqual((ids(h), h.get("has_more")), ([6, 7], False))
        h = await self.history(ch, since=4, limit=3)
        self.assertEqual((ids(h), h.get("has_more")), ([5, 6, 7], False))
        h = await self.history(ch, since=7)
        self.assertEqual((ids(h), h.get("has_more")), ([], False))
        h = await self.history(ch, before=5, limit=3)
        self.assertEqual((ids(h), h.get("has_more")), ([2, 3, 4], True),
                         "before: the newest `limit` events before it")
        h = await self.history(ch, before=3)
        self.assertEqual((ids(h), h.get("has_more")), ([1, 2], False))
        h = await self.history(ch, limit=2)
        self.assertEqual((ids(h), h.get("has_more")), ([6, 7], True))

    async def test_channels_isolated(self):
        """Channels whose names sort next to each other never mix."""
        base = unique_suid("iso")
        ca, cb = f"user:{base}a", f"user:{base}b"
        for i in range(60):
            await self.publish(ca, "notification", {"a": i})
        for i in range(3):
            await self.publish(cb, "notification", {"b": i})
        for ch, n in ((ca, 60), (cb, 3)):
            for params in ({}, {"before": 3}, {"since": n - 2}, {"limit": 500}):
                h = await self.history(ch, **params)
                self.assertEqual({e.get("channel") for e in h["events"]}, {ch},
                                 f"GET /api/history {ch} {params}: only its own events: "
                                 f"{[(e.get('channel'), e.get('event_id')) for e in h['events']][:5]}")

    async def test_empty_channel(self):
        h = await self.history(f"user:{unique_uid()}")
        self.assertEqual((h.get("events"), h.get("has_more")), ([], False), f"{h}")
        self.assertIn("epoch", h)

    async def test_limit_clamped_to_500(self):
        room = unique_room()
        ch = f"chat:{room}"
        a = await self.connect_ok(f"/ws/chat/{room}/", token(unique_uid(), channels=[ch]))
        n = 505
        for i in range(n):
            await a.send({"type": "message", "message": f"m{i}", "id": f"m{i}"})
        await a.recv("ack", pred=lambda f: f.get("id") == f"m{n - 1}", timeout=15)
        h = await self.history(ch, limit=1000)
        ids = [e["event_id"] for e in h["events"]]
        self.assertEqual(ids, list(range(6, 506)), "limit clamped to 500, newest last")
        self.assertIs(h.get("has_more"), True)
        h = await self.history(ch, since=0, limit=1000)
        ids = [e["event_id"] for e in h["events"]]
        self.assertEqual(ids, list(range(1, 501)))
        self.assertIs(h.get("has_more"), True)
        self.assertEqual([e.get("content") for e in h["events"][:2]], ["m0", "m1"])

    async def test_history_errors(self):
        r = await self.api("GET", "/api/history")
        self.check_error_body(r, 400)
        r = await self.api("GET", "/api/history?channel=bad%20name")
        self.check_error_body(r, 400)
        r = await self.api("GET", f"/api/history?channel=user:{unique_uid()}", key=None)
        self.check_error_body(r, 401)


class PresenceDisconnectTest(ApiBase):

    async def test_presence(self):
        room = unique_room()
        ch = f"chat:{room}"
        ua, ub = unique_uid(), unique_suid()
        await self.connect_ok(f"/ws/chat/{room}/", token(ua, name="Alice", channels=[ch]))
        await self.connect_ok(f"/ws/chat/{room}/", token(ua, name="Alice", channels=[ch]))
        await self.connect_ok(f"/ws/chat/{room}/", token(ub, name="Bob", channels=[ch]))
        await asyncio.sleep(0.2)
        r = await self.api("GET", f"/api/presence?channel={ch}")
        self.assertEqual(r.status, 200, f"{r}")
        self.assertEqual(r.json.get("channel"), ch)
        users = {str(u.get("user_id")): u for u in r.json.get("users", [])}
        self.assertEqual(set(users), {str(ua), ub}, f"{r}")
        self.assertEqual(users[str(ua)].get("user_id"), ua)
        self.assertEqual(users[str(ua)].get("connections"), 2)
        self.assertEqual(users[str(ua)].get("username"), "Alice")
        self.assertEqual(users[ub].get("connections"), 1)
        r = await self.api("GET", f"/api/presence?channel=chat:{unique_room()}")
        self.assertEqual((r.status, r.json.get("users")), (200, []), f"{r}")
        r = await self.api("GET", f"/api/presence?channel={ch}", key=None)
        self.check_error_body(r, 401)
        r = await self.api("GET", "/api/presence")
        self.check_error_body(r, 400)

    async def test_disconnect_closes_all_of_a_users_sockets_4005(self):
        room = unique_room()
        ch = f"chat:{room}"
        uid, other = unique_uid(), unique_uid()
        c1 = await self.connect_ok(f"/ws/chat/{room}/", token(uid, channels=[ch]))
        c2 = await self.connect_ok("/ws/updates/", token(uid, role="cadet"))
        c3 = await self.connect_ok("/ws/", token(uid))
        o = await self.connect_ok(f"/ws/chat/{room}/", token(other, channels=[ch]))
        r = await self.api("POST", "/api/disconnect", {"user_id": uid})
        self.assertEqual(r.status, 200, f"{r}")
        for c in (c1, c2, c3):
            await c.expect_close(4005, timeout=5)
        await o.send({"type": "ping", "id": "still"})
        self.assertEqual((await o.recv("pong")).get("id"), "still")
        # String user id.
        suid = unique_suid()
        s = await self.connect_ok("/ws/notifications/", token(suid))
        r = await self.api("POST", "/api/disconnect", {"user_id": suid})
        self.assertEqual(r.status, 200, f"{r}")
        await s.expect_close(4005, timeout=5)
        r = await self.api("POST", "/api/disconnect", {})
        self.check_error_body(r, 400)
        r = await self.api("POST", "/api/disconnect", {"user_id": uid}, key="wrong")
        self.check_error_body(r, 401)


class AuthAndErrorsTest(ApiBase):

    async def test_missing_or_wrong_key_401(self):
        body = {"channel": f"user:{unique_uid()}", "type": "notification", "data": {}}
        cases = [dict(key=None), dict(key="wrong-key"), dict(key=API_KEY + "x"),
                 dict(key=None, headers={"Authorization": f"Basic {API_KEY}"}),
                 dict(key=None, headers={"Authorization": API_KEY}),
                 dict(key=None, headers={"Authorization": "Bearer "})]
        for kw in cases:
            with self.subTest(**{k: str(v) for k, v in kw.items()}):
                r = await self.api("POST", "/api/publish", body, **kw)
                self.check_error_body(r, 401)
        r = await self.api("POST", "/api/broadcast",
                           {"channels": [body["channel"]], "type": "x", "data": {}}, key="nope")
        self.check_error_body(r, 401)
        h = await self.history(body["channel"])
        self.assertEqual(h["events"], [], "a refused publish stores nothing")

    async def test_bad_bodies_400(self):
        uid = unique_uid()
        good = {"channel": f"user:{uid}", "type": "notification", "data": {"a": 1}}
        raw_cases = [b"not json", b"[1,2]", b"", b'{"channel": "user:1", "type": "x", "data": {']
        for raw in raw_cases:
            with self.subTest(raw=raw):
                r = await self.api("POST", "/api/publish", raw_body=raw)
                self.check_error_body(r, 400)
        bad = [
            {k: v for k, v in good.items() if k != "channel"},
            {k: v for k, v in good.items() if k != "type"},
            dict(good, channel="bad name"),
            dict(good, channel=""),
            dict(good, channel="x" * 256),
            dict(good, channel=5),
            dict(good, type=""),
            dict(good, type=7),
            dict(good, data="text"),
            dict(good, data=[1, 2]),
            dict(good, data=3),
            # Types whose frames have their own shape in the protocol.
            dict(good, type="message"),
            dict(good, type="error"),
            dict(good, type="replay_complete"),
        ]
        for b in bad:
            with self.subTest(body=str(b)[:80]):
                r = await self.api("POST", "/api/publish", b)
                self.check_error_body(r, 400)
        for b in ({"channels": "user:1", "type": "x", "data": {}},
                  {"channels": ["user:1", "bad name"], "type": "x", "data": {}},
                  {"channels": ["user:1"], "type": "x", "data": "no"},
                  {"type": "x", "data": {}}):
            with self.subTest(broadcast=str(b)):
                r = await self.api("POST", "/api/broadcast", b)
                self.check_error_body(r, 400)
        h = await self.history(f"user:{uid}")
        self.assertEqual(h["events"], [], "nothing was stored by bad requests")
        r = await self.publish(f"user:{uid}", "notification", {"a": 1})
        self.assertEqual(r["event_id"], 1)

    async def test_unknown_api_path_404(self):
        for method, path in (("GET", "/api/nope"), ("POST", "/api/publishx"),
                             ("GET", "/api/publish/extra")):
            with self.subTest(path=path):
                r = await self.api(method, path, {} if method == "POST" else None)
                self.assertEqual(r.status, 404, f"{method} {path}: {r}")

    async def test_keep_alive(self):
        uid = unique_uid()
        ch = f"user:{uid}"
        port = self.server.port

        def run():
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            out = []
            try:
                sock = None
                for i in range(3):
                    out.append(http_request(port, "POST", "/api/publish",
                                            {"channel": ch, "type": "notification",
                                             "data": {"i": i}}, conn=conn))
                    if sock is None:
                        sock = conn.sock
                    out.append(conn.sock is sock and sock is not None)
                out.append(http_request(port, "GET", f"/api/history?channel={ch}", conn=conn))
                out.append(conn.sock is sock)
                out.append(http_request(port, "GET", "/health", key=None, conn=conn))
                out.append(conn.sock is sock)
                out.append(http_request(port, "POST", "/api/publish", raw_body=b"{bad",
                                        conn=conn))
                out.append(http_request(port, "GET", f"/api/presence?channel={ch}", conn=conn))
                out.append(conn.sock is sock)
            finally:
                conn.close()
            return out

        out = await asyncio.to_thread(run)
        responses = [x for x in out if not isinstance(x, bool)]
        same = [x for x in out if isinstance(x, bool)]
        self.assertEqual([r.status for r in responses], [200, 200, 200, 200, 200, 400, 200],
                         f"{responses}")
        self.assertEqual([r.json["event_id"] for r in responses[:3]], [1, 2, 3])
        self.assertTrue(all(same), "all requests must go over one kept-alive connection")


class HealthMetricsTest(ApiBase):

    async def test_health(self):
        r = await self.api("GET", "/health", key=None)
        self.assertEqual(r.status, 200, f"{r}")
        j = r.json
        self.assertIsInstance(j, dict, f"{r}")
        self.assertIsInstance(j.get("status"), str)
        self.assertEqual(j.get("node"), NODE_ID)
        self.assertIsInstance(j.get("uptime_s"), (int, float))
        self.assertGreaterEqual(j["uptime_s"], 0)
        members = j.get("cluster", {}).get("members")
        self.assertIsInstance(members, list, f"{j}")
        self.assertTrue(members, "the node itself is a member")

    @staticmethod
    def samples(text):
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?)\s+(\S+)", line)
            if m:
                try:
                    out[m.group(1)] = float(m.group(3))
                except ValueError:
                    pass
        return out

    async def test_metrics(self):
        r = await self.api("GET", "/metrics", key=None)
        self.assertEqual(r.status, 200, f"{r}")
        text = r.text
        self.assertRegex(text, r"(?m)^# TYPE \S+ counter$")
        self.assertRegex(text, r"(?m)^# TYPE \S+ histogram$")
        self.assertRegex(text, r'(?m)^\S+_bucket\{[^}]*le="[^"]+"[^}]*\} \S+$')
        self.assertRegex(text, r'(?m)^\S+_bucket\{[^}]*le="\+Inf"[^}]*\} \S+$')
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? \S+( \d+)?$",
                                 "Prometheus text sample line")
        before = self.samples(text)
        uid = unique_uid()
        for i in range(3):
            await self.publish(f"user:{uid}", "notification", {"i": i})
        await asyncio.sleep(0.2)
        after = self.samples((await self.api("GET", "/metrics", key=None)).text)
        grown = [k for k in after if "event" in k.lower() and "bucket" not in k
                 and after[k] - before.get(k, 0) >= 3]
        self.assertTrue(grown, "a counter of published events grows after 3 publishes")
        key = 'switchboard_namespace_events_stored_total{namespace="user"}'
        self.assertGreaterEqual(after.get(key, 0) - before.get(key, 0), 3,
                                "the user namespace's events counter grows by the 3 publishes")
        self.assertIn('switchboard_namespace_channels{namespace="chat"}', after,
                      "every configured namespace has its figures")
        self.assertIn('switchboard_namespace_channels{namespace="other"}', after)
        r = await self.api("GET", "/metrics", key=None)
        self.assertIn("text/plain", r.headers.get("content-type", ""))


class KeysFromConfigTest(ApiBase):
    start_class_server = False

    async def test_api_keys_override_and_env(self):
        k = [f"key-{i}-" + "0123456789abcdef" * 2 for i in range(1, 4)]
        srv = self.start_server(overrides=[f'--auth.api_keys=["{k[0]}","{k[1]}"]'],
                                name="keys-override")
        r = await asyncio.to_thread(api_publish, srv.port, f"user:{unique_uid()}", "n", {},
                                    k[1])
        self.assertEqual(r.status, 200, f"{r}")
        r = await asyncio.to_thread(api_publish, srv.port, f"user:{unique_uid()}", "n", {},
                                    k[2])
        self.assertEqual(r.status, 401, f"{r}")
        env_keys = ["env" + key for key in k]
        srv2 = self.start_server(env={"SWITCHBOARD_API_KEYS": f"{env_keys[0]},{env_keys[1]}"},
                                 name="keys-env")
        r = await asyncio.to_thread(api_publish, srv2.port, f"user:{unique_uid()}", "n", {},
                                    env_keys[1])
        self.assertEqual(r.status, 200, f"{r}")
        r = await asyncio.to_thread(api_publish, srv2.port, f"user:{unique_uid()}", "n", {},
                                    env_keys[2])
        self.assertEqual(r.status, 401, f"{r}")


class RoutesTest(ApiBase):

    async def test_notification_filter(self):
        uid = unique_uid()
        ch = f"user:{uid}"
        c = await self.connect_ok("/ws/notifications/", token(uid))
        await self.publish(ch, "notification", {"n": 1})
        await self.publish(ch, "grade_update", {"n": 2})
        self.assertEqual([f["event_id"] for f in await c.recv_n(2, ("notification",
                                                                   "grade_update"))], [1, 2],
                         "before any subscribe, everything is delivered")

        async def sub(kind, types, fid):
            await c.send({"type": kind, "notification_types": types, "id": fid})
            # Answered by subscribed/unsubscribed for the route's channel, with the id.
            answer = await c.recv(pred=lambda f: f.get("id") == fid, timeout=3)
            self.assertEqual(answer.get("type"), kind + "d", f"{kind} notification_types: {answer}")
            self.assertEqual(answer.get("channel"), ch)
            self.assertIn("epoch", answer)
            self.assertIn("last_event_id", answer)

        await sub("subscribe", ["grade_update"], "s1")
        await self.publish(ch, "notification", {"n": 3})
        await self.publish(ch, "grade_update", {"n": 4})
        f = await c.recv(("notification", "grade_update", "attendance_update"))
        self.assertEqual((f["type"], f["event_id"]), ("grade_update", 4))
        await c.expect_none("notification", 0.3)

        await sub("subscribe", ["attendance_update"], "s2")
        await self.publish(ch, "notification", {"n": 5})
        await self.publish(ch, "attendance_update", {"n": 6})
        await self.publish(ch, "grade_update", {"n": 7})
        got = await c.recv_n(2, ("notification", "grade_update", "attendance_update"))
        self.assertEqual([(f["type"], f["event_id"]) for f in got],
                         [("attendance_update", 6), ("grade_update", 7)],
                         "a second subscribe adds to the set")

        await sub("unsubscribe", ["grade_update"], "u1")
        await self.publish(ch, "grade_update", {"n": 8})
        await self.publish(ch, "attendance_update", {"n": 9})
        f = await c.recv(("notification", "grade_update", "attendance_update"))
        self.assertEqual((f["type"], f["event_id"]), ("attendance_update", 9))
        await c.expect_none(("notification", "grade_update"), 0.3)

        # The filter is per connection.
        c2 = await self.connect_ok("/ws/notifications/", token(uid))
        await self.publish(ch, "notification", {"n": 10})
        f = await c2.recv("notification")
        self.assertEqual(f["event_id"], 10)
        await c.expect_none("notification", 0.3)

    async def test_dashboard_and_leaderboard(self):
        mentor = await self.connect_ok("/ws/dashboard/", token(unique_uid(), role="mentor"))
        admin = await self.connect_ok("/ws/dashboard/", token(unique_uid(), role="admin"))
        anyone = await self.connect_ok("/ws/leaderboard/", token(unique_suid()))
        await self.expect_refused("/ws/dashboard/", token(unique_uid(), role="cadet"), 4004)
        marker = unique_room("mk")
        r = await self.publish("dashboard", "dashboard_update", {"m": marker})
        for c in (mentor, admin):
            f = await c.recv("dashboard_update", pred=lambda x: x.get("data") == {"m": marker})
            self.check_app_event(f, "dashboard", "dashboard_update", r["event_id"], {"m": marker})
        r = await self.publish("leaderboard", "leaderboard_update", {"m": marker})
        f = await anyone.recv("leaderboard_update", pred=lambda x: x.get("data") == {"m": marker})
        self.check_app_event(f, "leaderboard", "leaderboard_update", r["event_id"],
                             {"m": marker})
        await mentor.expect_none("leaderboard_update", 0.3)

    async def test_multiplex_user_channel_read_only(self):
        uid = unique_uid()
        mux = await self.connect_ok("/ws/", token(uid, role="admin"))
        for i, ch in enumerate((f"user:{uid}", "role:admin", "dashboard", "leaderboard")):
            await mux.send({"type": "subscribe", "channel": ch, "id": f"s{i}"})
            sub = await mux.recv("subscribed", pred=lambda f, i=i: f.get("id") == f"s{i}")
            self.assertEqual(sub.get("channel"), ch)
            await mux.send({"type": "message", "channel": ch, "message": "hi", "id": f"m{i}"})
            err = await mux.recv("error", pred=lambda f, i=i: f.get("id") == f"m{i}")
            self.assertEqual(err.get("code"), "forbidden", f"publishing to {ch}: {err}")
        r = await self.publish(f"user:{uid}", "notification", {"x": 1})
        f = await mux.recv("notification", channel=f"user:{uid}")
        self.check_app_event(f, f"user:{uid}", "notification", r["event_id"], {"x": 1})
        self.assertEqual(r["event_id"], 1, "forbidden publishes stored nothing")
        self.assertFalse(mux.take("message"))


if __name__ == "__main__":
    harness.main()
