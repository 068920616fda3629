#!/usr/bin/python3
"""Replay and history (PROTOCOL sections 4-6 and 10): `?last_event_id=N` at
connect, `replay_request` (last_event_id / positions), `subscribe` with
`since` / `epoch`, `replay_complete` and `gap`, the `history` frame, deleted
messages, and count/age retention."""

import asyncio
import json
import os
import time

import harness
from harness import SBTestCase, token, unique_room, unique_uid

FAST = ("--limits.rate_limit=100000", "--limits.rate_limit_burst=100000")


def without_replayed(frame):
    return {k: v for k, v in frame.items() if k != "replayed"}


class ReplayBase(SBTestCase):
    server_overrides = FAST

    async def chat(self, room, uid=None, query=None, **kw):
        uid = unique_uid() if uid is None else uid
        tok = token(uid, name=f"U{uid}", channels=[f"chat:{room}"], **kw)
        return await self.connect_ok(f"/ws/chat/{room}/", tok, query=query,
                                     label=f"{uid}@{room}")

    async def send_messages(self, client, n, prefix="m", channel=None):
        """Sends n messages with ids, waits for every ack; returns the event ids."""
        ids = []
        for i in range(n):
            f = {"type": "message", "message": f"{prefix}{i}", "id": f"{prefix}{i}"}
            if channel:
                f["channel"] = channel
            await client.send(f)
        for i in range(n):
            ack = await client.recv("ack", pred=lambda a, i=i: a.get("id") == f"{prefix}{i}",
                                    timeout=10)
            ids.append(ack["event_id"])
        return ids

    async def room_with_messages(self, n):
        """A fresh room where a first member has sent n messages; returns
        (room, channel, that member, epoch, {event_id: live frame})."""
        room = unique_room()
        ch = f"chat:{room}"
        a = await self.chat(room)
        epoch = a.established["channels"][0]["epoch"]
        await self.send_messages(a, n)
        live = {m["event_id"]: m for m in await a.recv_n(n, "message")}
        return room, ch, a, epoch, live

    async def read_replay(self, client, channel, timeout=5.0):
        """Frames of `channel` (stored event types or replay_complete) in arrival order up
        to and including replay_complete. Returns (events, replay_complete)."""
        events = []
        deadline = time.monotonic() + timeout
        while True:
            f = await client.recv(
                pred=lambda x: x.get("channel") == channel and (
                    x.get("type") == "replay_complete" or "event_id" in x),
                timeout=max(0.05, deadline - time.monotonic()))
            if f["type"] == "replay_complete":
                return events, f
            events.append(f)

    def check_replay_complete(self, rc, channel, epoch, last_event_id, gap):
        self.assertEqual(rc.get("type"), "replay_complete")
        self.assertEqual(rc.get("channel"), channel, f"{rc}")
        self.assertEqual(rc.get("epoch"), epoch, f"replay_complete epoch: {rc}")
        self.assertEqual(rc.get("last_event_id"), last_event_id, f"replay_complete: {rc}")
        self.assertIs(rc.get("gap"), gap, f"replay_complete gap: {rc}")

    def check_replayed(self, replayed, live_by_id, ids):
        self.assertEqual([f.get("event_id") for f in replayed], ids,
                         f"replayed event ids, in order: {[f.get('event_id') for f in replayed]}")
        for f in replayed:
            self.assertIs(f.get("replayed"), True, f"replayed events carry replayed: true: {f}")
            live = live_by_id.get(f["event_id"])
            if live is not None:
                self.assertEqual(without_replayed(f), live,
                                 "a replayed event is identical to the live one plus replayed")


class ReplayTest(ReplayBase):

    async def test_connect_with_last_event_id(self):
        room, ch, a, epoch, live = await self.room_with_messages(5)
        b = await self.chat(room, query="last_event_id=2")
        self.assertEqual(b.established["channels"][0]["last_event_id"], 5)
        self.assertEqual(b.established["channels"][0]["epoch"], epoch)
        replayed, rc = await self.read_replay(b, ch)
        self.check_replayed(replayed, live, [3, 4, 5])
        self.check_replay_complete(rc, ch, epoch, 5, False)
        # Then live events, not flagged.
        await a.send({"type": "message", "message": "after", "id": "af"})
        m = await b.recv("message", pred=lambda f: f.get("event_id") == 6)
        self.assertNotIn("replayed", m)
        await b.expect_none("message", 0.3, pred=lambda f: f.get("event_id", 0) <= 5)

    async def test_connect_with_last_event_id_zero_replays_all(self):
        room, ch, a, _, live = await self.room_with_messages(3)
        b = await self.chat(room, query="last_event_id=0")
        replayed, rc = await self.read_replay(b, ch)
        self.check_replayed(replayed, live, [1, 2, 3])
        self.check_replay_complete(rc, ch, a.established["channels"][0]["epoch"], 3, False)

    async def test_connect_up_to_date_replays_nothing(self):
        room = unique_room()
        ch = f"chat:{room}"
        a = await self.chat(room)
        await self.send_messages(a, 3)
        b = await self.chat(room, query="last_event_id=3")
        replayed, rc = await self.read_replay(b, ch)
        self.assertEqual(replayed, [])
        self.check_replay_complete(rc, ch, a.established["channels"][0]["epoch"], 3, False)

    async def test_all_stored_types_replayed_typing_not(self):
        room = unique_room()
        ch = f"chat:{room}"
        ua, ub = unique_uid(), unique_uid()
        a = await self.chat(room, ua)
        b = await self.chat(room, ub)
        frames = [
            (a, {"type": "message", "message": "one", "id": "s1"}),
            (a, {"type": "typing", "is_typing": True, "id": "s2"}),
            (b, {"type": "read", "message_id": 1, "id": "s3"}),
            (b, {"type": "reaction", "message_id": 1, "emoji": "🎉", "id": "s4"}),
            (a, {"type": "ping", "timestamp": 5, "id": "s5"}),
            (b, {"type": "message", "message": "two", "reply_to": 1, "id": "s6"}),
            (b, {"type": "reaction", "message_id": 1, "emoji": "🎉", "action": "remove",
                 "id": "s7"}),
        ]
        for cl, f in frames:
            await cl.send(f)
            await cl.recv(("ack", "pong"), pred=lambda x, i=f["id"]: x.get("id") == i)
        live = {}
        for _ in range(5):
            f = await a.recv(pred=lambda x: "event_id" in x and x.get("type") != "ack")
            live[f["event_id"]] = f
        self.assertEqual(sorted(live), [1, 2, 3, 4, 5])
        c = await self.chat(room, query="last_event_id=0")
        replayed, rc = await self.read_replay(c, ch)
        self.check_replayed(replayed, live, [1, 2, 3, 4, 5])
        self.assertEqual([f["type"] for f in replayed],
                         ["message", "read", "reaction", "message", "reaction"])
        self.check_replay_complete(rc, ch, a.established["channels"][0]["epoch"], 5, False)
        await c.collect(0.3)
        for t in ("typing", "pong", "error"):
            self.assertFalse(c.take(t), f"{t} frames are never replayed")

    async def test_replay_request_last_event_id(self):
        room, ch, a, epoch, live = await self.room_with_messages(4)
        await a.send({"type": "replay_request", "last_event_id": 1, "id": "rr1"})
        replayed, rc = await self.read_replay(a, ch)
        self.check_replayed(replayed, live, [2, 3, 4])
        self.check_replay_complete(rc, ch, epoch, 4, False)
        self.assertEqual(rc.get("id"), "rr1", "replay_complete carries the request's id")
        # Nothing to replay.
        await a.send({"type": "replay_request", "last_event_id": 4, "id": "rr2"})
        replayed, rc = await self.read_replay(a, ch)
        self.assertEqual(replayed, [])
        self.check_replay_complete(rc, ch, epoch, 4, False)
        self.assertEqual(rc.get("id"), "rr2")
        self.assertFalse(a.take("error"))

    async def test_replay_request_positions_multiplex(self):
        r1, r2 = unique_room(), unique_room()
        c1, c2 = f"chat:{r1}", f"chat:{r2}"
        uid = unique_uid()
        a = await self.chat(r1)
        b = await self.chat(r2)
        await self.send_messages(a, 3)
        await self.send_messages(b, 2)
        live = {(m["channel"], m["event_id"]): m
                for m in await a.recv_n(3, "message") + await b.recv_n(2, "message")}
        mux = await self.connect_ok("/ws/", token(uid, channels=[c1, c2]))
        for i, c in enumerate((c1, c2)):
            await mux.send({"type": "subscribe", "channel": c, "id": f"sub{i}"})
            await mux.recv("subscribed", pred=lambda f, i=i: f.get("id") == f"sub{i}")
        await mux.send({"type": "replay_request", "positions": {c1: 1, c2: 0}, "id": "rp"})
        rep1, rc1 = await self.read_replay(mux, c1)
        rep2, rc2 = await self.read_replay(mux, c2)
        self.check_replayed(rep1, {k[1]: v for k, v in live.items() if k[0] == c1}, [2, 3])
        self.check_replayed(rep2, {k[1]: v for k, v in live.items() if k[0] == c2}, [1, 2])
        self.check_replay_complete(rc1, c1, a.established["channels"][0]["epoch"], 3, False)
        self.check_replay_complete(rc2, c2, b.established["channels"][0]["epoch"], 2, False)
        self.assertEqual((rc1.get("id"), rc2.get("id")), ("rp", "rp"))

    async def test_subscribe_with_since(self):
        room, ch, a, epoch, live = await self.room_with_messages(5)
        uid = unique_uid()
        mux = await self.connect_ok("/ws/", token(uid, channels=[ch]))
        await mux.send({"type": "subscribe", "channel": ch, "since": 3, "id": "s"})
        sub = await mux.recv("subscribed")
        self.assertEqual((sub.get("id"), sub.get("channel"), sub.get("epoch"),
                          sub.get("last_event_id")), ("s", ch, epoch, 5), f"{sub}")
        replayed, rc = await self.read_replay(mux, ch)
        self.check_replayed(replayed, live, [4, 5])
        self.check_replay_complete(rc, ch, epoch, 5, False)
        await a.send({"type": "message", "message": "live", "id": "lv"})
        m = await mux.recv("message", pred=lambda f: f.get("event_id") == 6)
        self.assertNotIn("replayed", m)

        # The same epoch given explicitly: no gap.
        mux2 = await self.connect_ok("/ws/", token(unique_uid(), channels=[ch]))
        await mux2.send({"type": "subscribe", "channel": ch, "since": 5, "epoch": epoch,
                         "id": "s2"})
        replayed, rc = await self.read_replay(mux2, ch)
        self.check_replayed(replayed, {}, [6])
        self.check_replay_complete(rc, ch, epoch, 6, False)

    async def test_subscribe_with_other_epoch_is_a_gap(self):
        room = unique_room()
        ch = f"chat:{room}"
        a = await self.chat(room)
        epoch = a.established["channels"][0]["epoch"]
        await self.send_messages(a, 3)
        mux = await self.connect_ok("/ws/", token(unique_uid(), channels=[ch]))
        other = "not-" + str(epoch)
        await mux.send({"type": "subscribe", "channel": ch, "since": 2, "epoch": other,
                        "id": "s"})
        sub = await mux.recv("subscribed")
        self.assertEqual(sub.get("epoch"), epoch)
        replayed, rc = await self.read_replay(mux, ch)
        self.assertEqual(rc.get("gap"), True,
                         f"subscribe with an epoch that is not the channel's: gap true: {rc}")
        self.assertEqual(rc.get("epoch"), epoch)
        self.assertEqual(rc.get("last_event_id"), 3)
        for f in replayed:
            self.assertIs(f.get("replayed"), True)
        ids = [f["event_id"] for f in replayed]
        self.assertEqual(ids, sorted(set(ids)), "replayed in order, each once")

    async def _busy_reconnect(self, mode):
        """A publisher keeps sending while a second client resumes from the middle:
        every id after the position exactly once, in order, replayed ones first."""
        room = unique_room()
        ch = f"chat:{room}"
        n = 300
        pub = await self.chat(room)
        obs = await self.chat(room)
        epoch = pub.established["channels"][0]["epoch"]

        async def publish():
            for i in range(n):
                await pub.send({"type": "message", "message": f"p{i}", "id": f"p{i}"})
                if i % 3 == 2:
                    await asyncio.sleep(0.003)

        task = asyncio.create_task(publish())
        try:
            seen = []
            while len(seen) < 100:
                seen.append(await obs.recv("message", timeout=10))
            k = seen[-1]["event_id"] - 50   # well behind the channel: replay, then live
            if mode == "connect":
                r = await self.chat(room, query=f"last_event_id={k}")
            elif mode == "subscribe":
                r = await self.connect_ok("/ws/", token(unique_uid(), channels=[ch]))
                await r.send({"type": "subscribe", "channel": ch, "since": k, "id": "s"})
            await task
        finally:
            if not task.done():
                task.cancel()
        seen += await obs.recv_n(n - len(seen), "message", timeout=20)
        self.assertEqual([m["event_id"] for m in seen], list(range(1, n + 1)))
        live = {m["event_id"]: m for m in seen}
        self.assertGreater(k, 0)
        self.assertLess(k, n, "the resume must happen while messages are still being sent")

        frames = []
        rc = None
        deadline = time.monotonic() + 20
        while True:
            f = await r.recv(("message", "replay_complete"),
                             timeout=max(0.05, deadline - time.monotonic()))
            if f["type"] == "replay_complete":
                self.assertIsNone(rc, f"one replay_complete only: {rc} then {f}")
                rc = f
            else:
                frames.append(f)
                if f["event_id"] == n and rc is not None:
                    break
        ids = [f["event_id"] for f in frames]
        self.assertEqual(ids, list(range(k + 1, n + 1)),
                         f"every event after {k} exactly once, in order (got {len(ids)} "
                         f"frames; first {ids[:5]}, last {ids[-5:]})")
        replayed = [f for f in frames if f.get("replayed") is True]
        live_part = frames[len(replayed):]
        self.assertTrue(all("replayed" not in f for f in live_part),
                        "replayed events come first, then live ones (no replayed after live)")
        if os.environ.get("SB_DEBUG"):
            print(f"\n{mode}: k={k} replayed={len(replayed)} live={len(live_part)}")
        last_replayed = replayed[-1]["event_id"] if replayed else k
        self.check_replay_complete(rc, ch, epoch, last_replayed, False)
        await r.expect_none("message", 0.3)
        for f in frames:
            self.assertEqual(without_replayed(f), live[f["event_id"]])
        return rc

    async def test_busy_channel_connect_with_last_event_id(self):
        await self._busy_reconnect("connect")

    async def test_busy_channel_subscribe_since(self):
        await self._busy_reconnect("subscribe")


class HistoryTest(ReplayBase):

    async def test_history_newest_last_before_limit(self):
        room, ch, a, _, live = await self.room_with_messages(7)

        async def history(**kw):
            await a.send({"type": "history", **kw})
            return await a.recv("history", pred=lambda f: f.get("id") == kw.get("id"))

        h = await history(id="h1")
        self.assertEqual(h.get("channel"), ch)
        self.assertEqual([e.get("event_id") for e in h.get("events", [])], list(range(1, 8)),
                         "default limit 50: everything, newest last")
        self.assertIs(h.get("has_more"), False)
        for e in h["events"]:
            self.assertEqual(without_replayed(e), live[e["event_id"]],
                             "history events are the event frames")

        h = await history(limit=3, id="h2")
        self.assertEqual([e["event_id"] for e in h["events"]], [5, 6, 7])
        self.assertIs(h.get("has_more"), True)

        h = await history(before=5, limit=3, id="h3")
        self.assertEqual([e["event_id"] for e in h["events"]], [2, 3, 4])
        self.assertIs(h.get("has_more"), True)

        h = await history(before=3, limit=5, id="h4")
        self.assertEqual([e["event_id"] for e in h["events"]], [1, 2])
        self.assertIs(h.get("has_more"), False)

        h = await history(channel=ch, before=2, id="h5")
        self.assertEqual([e["event_id"] for e in h["events"]], [1])
        self.assertIs(h.get("has_more"), False)
        self.assertFalse(a.take("error"))

    async def test_history_and_replay_stay_in_their_channel(self):
        """Channels whose names sort next to each other: history and replay of one
        never return events of the other."""
        base = unique_room()
        ra, rb = base + "-a", base + "-b"
        a = await self.chat(ra)
        b = await self.chat(rb)
        await self.send_messages(a, 60, prefix="a")
        await self.send_messages(b, 3, prefix="b")
        for cl, room, n in ((a, ra, 60), (b, rb, 3)):
            await cl.send({"type": "history", "id": "iso"})
            h = await cl.recv("history", pred=lambda f: f.get("id") == "iso")
            self.assertEqual({e.get("channel") for e in h["events"]}, {f"chat:{room}"},
                             f"history of chat:{room} holds only its own events")
            self.assertEqual([e["event_id"] for e in h["events"]],
                             list(range(max(1, n - 49), n + 1)))
            self.assertIs(h.get("has_more"), n > 50)
            await cl.send({"type": "history", "before": 3, "id": "iso2"})
            h = await cl.recv("history", pred=lambda f: f.get("id") == "iso2")
            self.assertEqual([(e["channel"], e["event_id"]) for e in h["events"]],
                             [(f"chat:{room}", 1), (f"chat:{room}", 2)])
            c = await self.chat(room, query=f"last_event_id={n - 2}")
            replayed, rc = await self.read_replay(c, f"chat:{room}")
            self.assertEqual([(e["channel"], e["event_id"]) for e in replayed],
                             [(f"chat:{room}", n - 1), (f"chat:{room}", n)])

    async def test_history_empty_channel_and_multiplex(self):
        room = unique_room()
        ch = f"chat:{room}"
        a = await self.chat(room)
        await a.send({"type": "history", "id": "e"})
        h = await a.recv("history")
        self.assertEqual((h.get("channel"), h.get("events"), h.get("has_more"), h.get("id")),
                         (ch, [], False, "e"))
        await self.send_messages(a, 2)
        mux = await self.connect_ok("/ws/", token(unique_uid(), channels=[ch]))
        await mux.send({"type": "subscribe", "channel": ch, "id": "s"})
        await mux.recv("subscribed")
        await mux.send({"type": "history", "channel": ch, "limit": 1, "id": "mh"})
        h = await mux.recv("history")
        self.assertEqual(h.get("id"), "mh")
        self.assertEqual([e["event_id"] for e in h["events"]], [2])
        self.assertIs(h.get("has_more"), True)

    async def test_history_limit_clamped_to_500(self):
        room = unique_room()
        a = await self.chat(room)
        ids = await self.send_messages(a, 505)
        self.assertEqual(ids, list(range(1, 506)))
        await a.send({"type": "history", "limit": 1000, "id": "big"})
        h = await a.recv("history", timeout=10)
        got = [e["event_id"] for e in h["events"]]
        self.assertEqual(got, list(range(6, 506)), "limit is clamped to 500, newest last")
        self.assertIs(h.get("has_more"), True)

    async def test_deleted_message_in_history_and_replay(self):
        room = unique_room()
        ch = f"chat:{room}"
        ua = unique_uid()
        a = await self.chat(room, ua)
        secret = "the-secret-" + room
        await a.send({"type": "message", "message": "keep", "id": "k"})
        await a.send({"type": "message", "message": secret, "id": "s"})
        await a.recv("ack", pred=lambda f: f.get("id") == "s")
        await a.send({"type": "delete", "message_id": 2, "id": "d"})
        ack = await a.recv("ack", pred=lambda f: f.get("id") == "d")
        self.assertEqual(ack.get("event_id"), 3)

        def check(events, what):
            self.assertNotIn(secret, json.dumps(events, ensure_ascii=False),
                             f"{what}: the deleted content must not be returned")
            by_id = {e["event_id"]: e for e in events}
            self.assertEqual(by_id[1].get("content"), "keep")
            self.assertEqual(by_id[3].get("type"), "delete", f"{what} keeps the delete event")
            self.assertEqual(by_id[3].get("message_id"), 2)
            if 2 in by_id:
                self.assertEqual(by_id[2].get("type"), "message")
                self.assertIs(by_id[2].get("deleted"), True,
                              f"{what}: a deleted message returned has deleted: true")
                self.assertNotIn("content", by_id[2])

        await a.send({"type": "history", "id": "h"})
        h = await a.recv("history")
        check(h["events"], "history")
        b = await self.chat(room, query="last_event_id=0")
        replayed, rc = await self.read_replay(b, ch)
        check(replayed, "replay")
        self.assertEqual(rc.get("last_event_id"), 3)


class RetentionCountTest(ReplayBase):
    server_overrides = FAST + ('--namespaces.chat={"access":"members","history_size":5}',)

    async def poll_history(self, client, want_len, timeout=6.0):
        deadline = time.monotonic() + timeout
        n = 0
        while True:
            n += 1
            await client.send({"type": "history", "id": f"poll{n}"})
            h = await client.recv("history", pred=lambda f: f.get("id") == f"poll{n}")
            if len(h["events"]) == want_len or time.monotonic() > deadline:
                return h
            await asyncio.sleep(0.2)

    async def test_history_size_trims_and_replay_reports_gap(self):
        room = unique_room()
        ch = f"chat:{room}"
        a = await self.chat(room)
        epoch = a.established["channels"][0]["epoch"]
        ids = await self.send_messages(a, 20)
        self.assertEqual(ids, list(range(1, 21)))
        h = await self.poll_history(a, 5)
        self.assertEqual([e["event_id"] for e in h["events"]], [16, 17, 18, 19, 20],
                         "history_size 5: only the newest 5 are retained")
        self.assertIs(h.get("has_more"), False)

        b = await self.chat(room, query="last_event_id=3")
        self.assertEqual(b.established["channels"][0]["last_event_id"], 20)
        replayed, rc = await self.read_replay(b, ch)
        self.assertEqual([f["event_id"] for f in replayed], [16, 17, 18, 19, 20],
                         "replay sends what is retained")
        self.assertTrue(all(f.get("replayed") is True for f in replayed))
        self.check_replay_complete(rc, ch, epoch, 20, True)

        # Position just before the retained range: nothing missing, no gap.
        c = await self.chat(room, query="last_event_id=15")
        replayed, rc = await self.read_replay(c, ch)
        self.assertEqual([f["event_id"] for f in replayed], [16, 17, 18, 19, 20])
        self.check_replay_complete(rc, ch, epoch, 20, False)

        # One older: event 15 is gone, so there is a gap.
        await c.send({"type": "replay_request", "last_event_id": 14, "id": "r14"})
        replayed, rc = await self.read_replay(c, ch)
        self.assertEqual([f["event_id"] for f in replayed], [16, 17, 18, 19, 20])
        self.check_replay_complete(rc, ch, epoch, 20, True)

        # Ids keep counting after trimming.
        await a.send({"type": "message", "message": "next", "id": "nx"})
        ack = await a.recv("ack", pred=lambda f: f.get("id") == "nx")
        self.assertEqual(ack.get("event_id"), 21)


class RetentionAgeTest(ReplayBase):
    server_overrides = FAST + ('--namespaces.chat={"access":"members","history_ttl":1}',)

    async def test_history_ttl_expires_old_events(self):
        room = unique_room()
        ch = f"chat:{room}"
        a = await self.chat(room)
        await self.send_messages(a, 3)
        deadline = time.monotonic() + 8
        n = 0
        while True:
            n += 1
            await a.send({"type": "history", "id": f"t{n}"})
            h = await a.recv("history", pred=lambda f: f.get("id") == f"t{n}")
            if not h["events"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        self.assertEqual(h["events"], [], "events older than history_ttl are removed")
        await a.send({"type": "message", "message": "fresh", "id": "fr"})
        ack = await a.recv("ack", pred=lambda f: f.get("id") == "fr")
        self.assertEqual(ack.get("event_id"), 4, "event ids are never reused")
        await a.send({"type": "history", "id": "after"})
        h = await a.recv("history", pred=lambda f: f.get("id") == "after")
        self.assertEqual([e["event_id"] for e in h["events"]], [4])
        b = await self.chat(room, query="last_event_id=1")
        replayed, rc = await self.read_replay(b, ch)
        self.assertEqual([f["event_id"] for f in replayed], [4])
        self.assertIs(rc.get("gap"), True, f"events 2-3 expired: gap: {rc}")


if __name__ == "__main__":
    harness.main()
