#!/usr/bin/python3
"""SSE fallback (PROTOCOL section 7 and 10): GET /api/events streams the
events of /ws/updates/ (user:{id} and role:{role}); `id:` lists every channel's
position; Last-Event-ID replays; comment heartbeats; 401 without a valid token."""

import asyncio
import json
import threading
import time

import harness
from harness import (SBTestCase, SSEStream, token, unique_room, unique_uid, api_publish,
                     parse_sse_id, TS_RE)

APP_TYPES = ("grade_update", "notification", "attendance_update")


class SSETest(SBTestCase):
    server_overrides = ("--limits.heartbeat_interval=1",)

    def open(self, tok=None, via="header", last_event_id=None, timeout=5.0):
        headers = {}
        path = "/api/events"
        if tok is not None and via == "header":
            headers["Authorization"] = f"Bearer {tok}"
        elif tok is not None:
            path += "?token=" + tok
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        s = SSEStream(self.server.port, path, headers, timeout=timeout)
        self.addCleanup(s.close)
        return s

    def publish(self, channel, type_, data):
        r = api_publish(self.server.port, channel, type_, data)
        self.assertEqual(r.status, 200, f"publish to {channel}: {r}")
        return r.json

    def next_app_event(self, s, timeout=5.0):
        ev = s.next_event(timeout, pred=lambda e: e.get("event") in APP_TYPES)
        self.assertIsNotNone(ev, "expected an SSE event")
        return ev

    def check_event(self, ev, type_, channel, event_id, data, sse_id):
        self.assertEqual(ev.get("event"), type_, f"{ev}")
        frame = json.loads(ev["data"])
        self.assertEqual(frame.get("type"), type_)
        self.assertEqual(frame.get("channel"), channel)
        self.assertEqual(frame.get("event_id"), event_id)
        self.assertEqual(frame.get("data"), data)
        self.assertRegex(frame.get("timestamp", ""), TS_RE)
        self.assertEqual(ev.get("id"), sse_id, "id: lists every channel of the stream")
        return frame

    def test_missing_or_bad_token_401(self):
        uid = unique_uid()
        cases = [
            (None, "header"),
            ("not.a.jwt", "header"),
            ("not.a.jwt", "query"),
            (token(uid, secret="wrong-secret"), "header"),
            (token(uid, ttl=-60), "query"),
            (token(uid, exp=None), "header"),
        ]
        for tok, via in cases:
            with self.subTest(tok=str(tok)[:20], via=via):
                s = self.open(tok, via)
                self.assertEqual(s.status, 401, f"{s.head}")
                s.close()

    def test_stream_header_token(self):
        uid = unique_uid()
        role = unique_room("rl")
        s = self.open(token(uid, role=role))
        self.assertEqual(s.status, 200, s.head)
        self.assertIn("text/event-stream", s.headers.get("content-type", ""))
        self.publish(f"user:{uid}", "grade_update", {"g": 1})
        ev = self.next_app_event(s)
        self.check_event(ev, "grade_update", f"user:{uid}", 1, {"g": 1},
                         f"user:{uid}=1,role:{role}=0")
        self.publish(f"role:{role}", "notification", {"text": "hello é"})
        ev = self.next_app_event(s)
        self.check_event(ev, "notification", f"role:{role}", 1, {"text": "hello é"},
                         f"user:{uid}=1,role:{role}=1")
        self.publish(f"user:{unique_uid()}", "notification", {"other": True})
        self.publish(f"user:{uid}", "attendance_update", {"a": 2})
        ev = self.next_app_event(s)
        self.check_event(ev, "attendance_update", f"user:{uid}", 2, {"a": 2},
                         f"user:{uid}=2,role:{role}=1")

    def test_stream_query_token_no_role(self):
        uid = unique_uid()
        s = self.open(token(uid), via="query")
        self.assertEqual(s.status, 200, s.head)
        self.publish(f"user:{uid}", "notification", {"n": 1})
        ev = self.next_app_event(s)
        self.check_event(ev, "notification", f"user:{uid}", 1, {"n": 1}, f"user:{uid}=1")

    def test_last_event_id_replays_missed_events(self):
        uid = unique_uid()
        role = unique_room("rl")
        for i in range(3):
            self.publish(f"user:{uid}", "notification", {"u": i})
        for i in range(2):
            self.publish(f"role:{role}", "grade_update", {"r": i})
        s = self.open(token(uid, role=role), last_event_id=f"user:{uid}=1,role:{role}=0")
        self.assertEqual(s.status, 200, s.head)
        got = []
        for _ in range(4):
            ev = self.next_app_event(s)
            frame = json.loads(ev["data"])
            got.append((frame["channel"], frame["event_id"], frame["data"]))
            pos = parse_sse_id(ev.get("id", ""))
            self.assertEqual(set(pos), {f"user:{uid}", f"role:{role}"}, f"id: {ev.get('id')}")
            self.assertEqual(pos[frame["channel"]], frame["event_id"])
        user = [g for g in got if g[0] == f"user:{uid}"]
        rl = [g for g in got if g[0] == f"role:{role}"]
        self.assertEqual(user, [(f"user:{uid}", 2, {"u": 1}), (f"user:{uid}", 3, {"u": 2})])
        self.assertEqual(rl, [(f"role:{role}", 1, {"r": 0}), (f"role:{role}", 2, {"r": 1})])
        # Then live, positions carried on.
        self.publish(f"user:{uid}", "notification", {"u": 3})
        ev = self.next_app_event(s)
        self.check_event(ev, "notification", f"user:{uid}", 4, {"u": 3},
                         f"user:{uid}=4,role:{role}=2")
        extra = s.next_event(0.5, pred=lambda e: e.get("event") in APP_TYPES)
        self.assertIsNone(extra, f"nothing twice: {extra}")

    def test_last_event_id_up_to_date_replays_nothing(self):
        uid = unique_uid()
        for i in range(2):
            self.publish(f"user:{uid}", "notification", {"u": i})
        s = self.open(token(uid), last_event_id=f"user:{uid}=2")
        self.assertEqual(s.status, 200, s.head)
        extra = s.next_event(0.7, pred=lambda e: e.get("event") in APP_TYPES)
        self.assertIsNone(extra, f"nothing to replay: {extra}")
        self.publish(f"user:{uid}", "notification", {"u": 2})
        ev = self.next_app_event(s)
        self.check_event(ev, "notification", f"user:{uid}", 3, {"u": 2}, f"user:{uid}=3")

    def test_resume_while_busy_every_event_once(self):
        uid = unique_uid()
        ch = f"user:{uid}"
        n = 200
        acked = []

        def loop():
            for i in range(n):
                r = api_publish(self.server.port, ch, "notification", {"i": i})
                if r.status == 200:
                    acked.append(r.json["event_id"])

        t = threading.Thread(target=loop)
        t.start()
        try:
            deadline = time.monotonic() + 10
            while len(acked) < 60 and time.monotonic() < deadline:
                time.sleep(0.005)
            s = self.open(token(uid), last_event_id=f"{ch}=30")
            self.assertEqual(s.status, 200, s.head)
            ids = []
            while not ids or ids[-1] < n:
                ev = s.next_event(10, pred=lambda e: e.get("event") == "notification")
                self.assertIsNotNone(ev, f"stream stalled after {ids[-3:]}")
                frame = json.loads(ev["data"])
                self.assertEqual(frame["channel"], ch)
                self.assertEqual(ev.get("id"), f"{ch}={frame['event_id']}")
                self.assertEqual(frame["data"], {"i": frame["event_id"] - 1})
                ids.append(frame["event_id"])
        finally:
            t.join(20)
        self.assertEqual(acked, list(range(1, n + 1)))
        self.assertEqual(ids, list(range(31, n + 1)),
                         "after Last-Event-ID, every event exactly once, in order")
        extra = s.next_event(0.3, pred=lambda e: e.get("event") == "notification")
        self.assertIsNone(extra, f"nothing twice: {extra}")

    def test_heartbeat_comment(self):
        s = self.open(token(unique_uid()))
        self.assertEqual(s.status, 200, s.head)
        t0 = time.monotonic()
        comments = 0
        while time.monotonic() - t0 < 3.5 and comments < 2:
            item = s.next_item(max(0.05, 3.5 - (time.monotonic() - t0)))
            if item is None:
                break
            if item[0] == "comment":
                comments += 1
        self.assertGreaterEqual(comments, 2,
                                "a comment line every heartbeat_interval (1 s here)")

    async def test_same_events_as_updates_route(self):
        uid = unique_uid()
        role = unique_room("rl")
        ws = await self.connect_ok("/ws/updates/", token(uid, role=role))
        s = await asyncio.to_thread(self.open, token(uid, role=role))
        self.assertEqual(s.status, 200, s.head)
        await asyncio.to_thread(self.publish, f"role:{role}", "grade_update", {"x": [1, 2]})
        ev = await asyncio.to_thread(self.next_app_event, s)
        live = await ws.recv("grade_update")
        self.assertEqual(json.loads(ev["data"]), live, "SSE data is the same JSON frame")


if __name__ == "__main__":
    harness.main()
