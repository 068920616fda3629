#!/usr/bin/python3
"""Durable events (PROTOCOL sections 5, 6, 8, 9 as far as one node goes):
history, epochs and idempotency records survive a restart on the same data dir
(SIGTERM and kill -9); every acknowledged event survives a crash; a data dir
that is locked, not a directory or corrupt stops the server cleanly."""

import asyncio
import json
import os
import threading
import time

import harness
from harness import (SBTestCase, DataDirServer, make_data_dir, token, unique_room, unique_uid,
                     http_request, api_publish, api_history)

FAST = ("--limits.rate_limit=100000", "--limits.rate_limit_burst=100000")


def without_replayed(frame):
    return {k: v for k, v in frame.items() if k != "replayed"}


class DurableBase(SBTestCase):
    start_class_server = False

    def boot(self, data_dir, overrides=FAST, name=None):
        srv = DataDirServer(data_dir, overrides=overrides,
                            name=name or f"{self._testMethodName}-{len(self._own_servers)}")
        self._own_servers.append(srv)
        self.addCleanup(srv.kill)
        srv.start()
        return srv

    async def restart(self, srv, how="term"):
        """Stops `srv` (SIGTERM: must exit 0; or kill -9) and starts a new
        server on the same data dir."""
        if how == "term":
            rc = await asyncio.to_thread(srv.stop, 10)
            self.assertEqual(rc, 0, f"exit code after SIGTERM\n{srv.log_tail(30)}")
        else:
            await asyncio.to_thread(srv.sigkill)
        return self.boot(srv.data_dir, srv.overrides)

    async def chat(self, srv, room, uid, query=None, name=None):
        tok = token(uid, name=name or f"U{uid}", channels=[f"chat:{room}"])
        return await self.connect_ok(f"/ws/chat/{room}/", tok, server=srv, query=query,
                                     label=f"{uid}@{room}")

    async def history_all(self, port, channel):
        """Every retained event of `channel` through GET /api/history?since=, paging."""
        events, since, epoch = [], 0, None
        while True:
            r = await asyncio.to_thread(api_history, port, channel, since=since, limit=500)
            self.assertEqual(r.status, 200, f"{r}")
            epoch = r.json.get("epoch")
            events += r.json["events"]
            if not r.json.get("has_more") or not r.json["events"]:
                return epoch, events
            since = r.json["events"][-1]["event_id"]

    def run_bad_data_dir(self, data_dir, what):
        srv = DataDirServer(data_dir, name=self._testMethodName)
        self._own_servers.append(srv)
        rc = srv.run_to_exit(15)
        out = srv.log()
        self.assertIsNotNone(rc, f"{what}: the server must exit by itself, but it kept running "
                                 f"(or took >15 s)\n{out[-2000:]}")
        self.assertGreater(rc, 0, f"{what}: must exit non-zero, cleanly (not by a signal: "
                                  f"rc={rc})\n{out[-2000:]}")
        self.assertNotRegex(out, r"listening.*port=", f"{what}: must not start listening")
        self.assertRegex(out, r"(?i)data|lock|corrupt|rocksdb|storage|director",
                         f"{what}: a clear error message is expected\n{out[-2000:]}")
        return out


class RestartTest(DurableBase):

    async def test_history_and_epoch_survive_sigterm_restart(self):
        d = make_data_dir()
        srv = self.boot(d)
        room = unique_room()
        ch = f"chat:{room}"
        ua, ub = unique_uid(), unique_uid()
        a = await self.chat(srv, room, ua)
        b = await self.chat(srv, room, ub)
        epoch = a.established["channels"][0]["epoch"]
        secret = "secret-" + room
        frames = [
            (a, {"type": "message", "message": "hello", "id": "1"}),
            (b, {"type": "message", "message": secret, "id": "2"}),
            (a, {"type": "read", "message_id": 2, "id": "3"}),
            (a, {"type": "reaction", "message_id": 1, "emoji": "👍", "id": "4"}),
            (b, {"type": "delete", "message_id": 2, "id": "5"}),
            (b, {"type": "message", "message": "bye", "reply_to": 1, "id": "6"}),
        ]
        for i, (cl, f) in enumerate(frames):
            await cl.send(f)
            ack = await cl.recv("ack", pred=lambda x, i=f["id"]: x.get("id") == i)
            self.assertEqual(ack.get("event_id"), i + 1)
        live = {}
        while len(live) < 6:
            f = await a.recv(pred=lambda x: "event_id" in x and x.get("type") != "ack")
            live[f["event_id"]] = f
        uid = unique_uid()
        pub = await asyncio.to_thread(api_publish, srv.port, f"user:{uid}", "grade_update",
                                      {"g": 3})
        self.assertEqual(pub.status, 200, f"{pub}")

        srv2 = await self.restart(srv, "term")
        c = await self.chat(srv2, room, ua, query="last_event_id=0")
        est = c.established["channels"][0]
        self.assertEqual((est["epoch"], est["last_event_id"]), (epoch, 6),
                         "epoch and last_event_id survive a restart")
        replayed = []
        while True:
            f = await c.recv(pred=lambda x: x.get("channel") == ch and (
                "event_id" in x or x.get("type") == "replay_complete"))
            if f["type"] == "replay_complete":
                rc = f
                break
            replayed.append(f)
        self.assertEqual((rc.get("epoch"), rc.get("last_event_id"), rc.get("gap")),
                         (epoch, 6, False))
        await c.send({"type": "history", "id": "h"})
        h = await c.recv("history")
        for what, events in (("replay", replayed), ("history", h["events"])):
            self.assertNotIn(secret, json.dumps(events, ensure_ascii=False),
                             f"{what} after restart must not return deleted content")
            by_id = {e["event_id"]: e for e in events}
            ids = [e["event_id"] for e in events]
            self.assertEqual(ids, sorted(ids))
            self.assertTrue(set(ids) >= {1, 3, 4, 5, 6}, f"{what}: {ids}")
            for i in (1, 3, 4, 5, 6):
                self.assertEqual(without_replayed(by_id[i]), live[i],
                                 f"{what}: event {i} identical after restart")
            if 2 in by_id:
                self.assertIs(by_id[2].get("deleted"), True)
        # Ids go on.
        await c.send({"type": "message", "message": "after restart", "id": "n"})
        self.assertEqual((await c.recv("ack", pred=lambda x: x.get("id") == "n"))
                         .get("event_id"), 7)
        # App events too.
        ep, events = await self.history_all(srv2.port, f"user:{uid}")
        self.assertEqual(ep, pub.json["epoch"])
        self.assertEqual([(e["event_id"], e["type"], e["data"]) for e in events],
                         [(1, "grade_update", {"g": 3})])
        r = await asyncio.to_thread(api_publish, srv2.port, f"user:{uid}", "grade_update", {})
        self.assertEqual((r.json["event_id"], r.json["epoch"]), (2, pub.json["epoch"]))

    async def test_acked_messages_survive_kill9(self):
        d = make_data_dir()
        srv = self.boot(d)
        room = unique_room()
        ua = unique_uid()
        a = await self.chat(srv, room, ua)
        epoch = a.established["channels"][0]["epoch"]
        for i in range(20):
            await a.send({"type": "message", "message": f"m{i}", "id": f"m{i}"})
        await a.recv("ack", pred=lambda x: x.get("id") == "m19", timeout=10)
        srv2 = await self.restart(srv, "kill")
        b = await self.chat(srv2, room, ua)
        est = b.established["channels"][0]
        self.assertEqual((est["epoch"], est["last_event_id"]), (epoch, 20))
        ep, events = await self.history_all(srv2.port, f"chat:{room}")
        self.assertEqual(ep, epoch)
        self.assertEqual([(e["event_id"], e["content"]) for e in events],
                         [(i + 1, f"m{i}") for i in range(20)])

    async def test_empty_channel_and_epoch_stable_over_two_restarts(self):
        d = make_data_dir()
        srv = self.boot(d)
        room, empty = unique_room(), unique_room()
        uid = unique_uid()
        a = await self.chat(srv, room, uid)
        epoch = a.established["channels"][0]["epoch"]
        await a.send({"type": "message", "message": "x", "id": "x"})
        await a.recv("ack")
        srv = await self.restart(srv, "term")
        srv = await self.restart(srv, "kill")
        b = await self.chat(srv, room, uid)
        self.assertEqual(b.established["channels"][0]["epoch"], epoch)
        self.assertEqual(b.established["channels"][0]["last_event_id"], 1)
        e = await self.chat(srv, empty, uid)
        self.assertEqual(e.established["channels"][0]["last_event_id"], 0)


class LostHistoryTest(DurableBase):

    async def test_new_epoch_when_history_is_lost(self):
        """A node started on an empty data dir has lost the channel's history: the
        epoch differs, and a client resuming with the old epoch is told gap: true."""
        srv = self.boot(make_data_dir())
        room, uid = unique_room(), unique_uid()
        ch = f"chat:{room}"
        a = await self.chat(srv, room, uid)
        old_epoch = a.established["channels"][0]["epoch"]
        for i in range(3):
            await a.send({"type": "message", "message": f"m{i}", "id": f"m{i}"})
        await a.recv("ack", pred=lambda f: f.get("id") == "m2")
        self.assertEqual(await asyncio.to_thread(srv.stop, 10), 0)

        srv2 = self.boot(make_data_dir())
        mux = await self.connect_ok("/ws/", token(uid, channels=[ch]), server=srv2)
        await mux.send({"type": "subscribe", "channel": ch, "since": 3, "epoch": old_epoch,
                        "id": "s"})
        sub = await mux.recv("subscribed")
        self.assertEqual(sub.get("last_event_id"), 0)
        self.assertNotEqual(sub.get("epoch"), old_epoch,
                            "a channel whose history was lost has a new epoch")
        rc = await mux.recv("replay_complete", timeout=5)
        self.assertEqual((rc.get("channel"), rc.get("epoch"), rc.get("gap")),
                         (ch, sub.get("epoch"), True), f"{rc}")


class TombstoneTest(DurableBase):

    async def test_deleted_content_leaves_the_disk(self):
        d = make_data_dir()
        srv = self.boot(d)
        room, uid = unique_room(), unique_uid()
        secret = f"TOMBSTONE-{room}-PLAINTEXT"
        a = await self.chat(srv, room, uid)
        await a.send({"type": "message", "message": secret, "id": "m"})
        ack = await a.recv("ack", pred=lambda f: f.get("id") == "m")

        def files_with_secret():
            found = []
            for root, _, files in os.walk(d):
                for f in files:
                    try:
                        with open(os.path.join(root, f), "rb") as fh:
                            if secret.encode() in fh.read():
                                found.append(f)
                    except FileNotFoundError:
                        pass  # compacted away between the listing and the read
            return found

        self.assertTrue(files_with_secret(), "the message is on disk before the delete")
        await a.send({"type": "delete", "message_id": ack["event_id"], "id": "d"})
        await a.recv("ack", pred=lambda f: f.get("id") == "d")
        deadline = time.monotonic() + 5
        while files_with_secret() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        self.assertEqual(files_with_secret(), [], "deleted content must leave the data dir")
        srv2 = await self.restart(srv)
        ep, events = await self.history_all(srv2.port, f"chat:{room}")
        self.assertNotIn(secret, json.dumps(events))


class IdempotencyRestartTest(DurableBase):

    async def _resend_after_restart(self, how):
        d = make_data_dir()
        srv = self.boot(d)
        room = unique_room()
        ua, ub = unique_uid(), unique_uid()
        a = await self.chat(srv, room, ua)
        frame = {"type": "message", "message": "only once", "id": "idem-1"}
        await a.send(frame)
        self.assertEqual((await a.recv("ack")).get("event_id"), 1)
        await a.send({"type": "message", "message": "two", "id": "idem-2"})
        self.assertEqual((await a.recv("ack", pred=lambda x: x.get("id") == "idem-2"))
                         .get("event_id"), 2)
        await a.send({"type": "delete", "message_id": 2, "id": "idem-del"})
        self.assertEqual((await a.recv("ack", pred=lambda x: x.get("id") == "idem-del"))
                         .get("event_id"), 3)

        srv2 = await self.restart(srv, how)
        a2 = await self.chat(srv2, room, ua)
        b = await self.chat(srv2, room, ub)
        await a2.send(frame)
        ack = await a2.recv(("ack", "error"), pred=lambda x: x.get("id") == "idem-1")
        self.assertEqual((ack.get("type"), ack.get("event_id")), ("ack", 1),
                         f"a resend after a restart ({how}) returns the first event_id: {ack}")
        await a2.send({"type": "delete", "message_id": 2, "id": "idem-del"})
        ack = await a2.recv(("ack", "error"), pred=lambda x: x.get("id") == "idem-del")
        self.assertEqual((ack.get("type"), ack.get("event_id")), ("ack", 3),
                         f"an idempotent resend wins over not_found: {ack}")
        await b.expect_none(("message", "delete"), 0.4)
        await a2.send({"type": "message", "message": "new", "id": "idem-3"})
        self.assertEqual((await a2.recv("ack", pred=lambda x: x.get("id") == "idem-3"))
                         .get("event_id"), 4, "nothing was stored twice")
        ep, events = await self.history_all(srv2.port, f"chat:{room}")
        self.assertEqual([e["event_id"] for e in events if e["type"] == "message"
                          and e.get("content") == "only once"], [1])

    async def test_idempotent_resend_after_sigterm(self):
        await self._resend_after_restart("term")

    async def test_idempotent_resend_after_kill9(self):
        await self._resend_after_restart("kill")


class CrashTest(DurableBase):

    async def test_kill9_mid_publish_loop_loses_nothing_acked(self):
        d = make_data_dir()
        srv = self.boot(d)
        ch = f"user:{unique_uid()}"
        acked = []      # (event_id, epoch, data)
        errors = []
        stop = threading.Event()

        def loop():
            i = 0
            while not stop.is_set():
                data = {"i": i, "pad": "x" * 100}
                try:
                    r = api_publish(srv.port, ch, "notification", data)
                except Exception as e:  # the server died mid-request: not acknowledged
                    errors.append(repr(e))
                    return
                if r.status == 200:
                    acked.append((r.json["event_id"], r.json["epoch"], data))
                i += 1

        # A WebSocket publisher at the same time, on a chat channel.
        room = unique_room()
        uid = unique_uid()
        ws = await self.chat(srv, room, uid)
        ws_epoch = ws.established["channels"][0]["epoch"]
        ws_acked = {}   # event_id -> content

        async def ws_loop():
            i = 0
            try:
                while True:
                    await ws.send({"type": "message", "message": f"w{i}", "id": f"w{i}"})
                    ack = await ws.recv("ack", pred=lambda x, i=i: x.get("id") == f"w{i}")
                    ws_acked[ack["event_id"]] = f"w{i}"
                    i += 1
            except (AssertionError, Exception):
                return

        t = threading.Thread(target=loop)
        t.start()
        wt = asyncio.create_task(ws_loop())
        deadline = time.monotonic() + 10
        while len(acked) < 150 and time.monotonic() < deadline and t.is_alive():
            await asyncio.sleep(0.01)
        await asyncio.to_thread(srv.sigkill)
        stop.set()
        await asyncio.to_thread(t.join, 10)
        await asyncio.wait_for(wt, 10)
        self.assertGreater(len(ws_acked), 5, "the WebSocket publisher got acks")
        self.assertGreater(len(acked), 20, f"the loop must have been acknowledged a while "
                                           f"({len(acked)} acks, errors {errors[:2]})")
        ids = [a[0] for a in acked]
        self.assertEqual(ids, list(range(1, len(ids) + 1)), "acked ids are contiguous from 1")
        self.assertEqual(len({a[1] for a in acked}), 1, "one epoch")

        srv2 = self.boot(d)
        epoch, events = await self.history_all(srv2.port, ch)
        self.assertEqual(epoch, acked[0][1], "the epoch survives a crash")
        got_ids = [e["event_id"] for e in events]
        self.assertEqual(got_ids, list(range(1, len(got_ids) + 1)),
                         "ids contiguous from 1, no holes")
        self.assertGreaterEqual(len(got_ids), len(acked),
                                f"every acknowledged event survives ({len(acked)} acked, "
                                f"{len(got_ids)} found)")
        by_id = {e["event_id"]: e for e in events}
        for eid, _, data in acked:
            self.assertEqual(by_id[eid].get("data"), data, f"event {eid} intact")
        ep, wevents = await self.history_all(srv2.port, f"chat:{room}")
        self.assertEqual(ep, ws_epoch)
        wids = [e["event_id"] for e in wevents]
        self.assertEqual(wids, list(range(1, len(wids) + 1)), "chat ids contiguous from 1")
        wby = {e["event_id"]: e for e in wevents}
        for eid, content in ws_acked.items():
            self.assertIn(eid, wby, f"acknowledged message {eid} lost in the crash")
            self.assertEqual(wby[eid].get("content"), content)
        r = await asyncio.to_thread(api_publish, srv2.port, ch, "notification", {"after": 1})
        self.assertEqual(r.status, 200)
        self.assertEqual((r.json["event_id"], r.json["epoch"]),
                         (len(got_ids) + 1, acked[0][1]))


class BadDataDirTest(DurableBase):

    async def test_data_dir_locked_by_running_node(self):
        d = make_data_dir()
        first = self.boot(d, name="lock-holder")
        self.run_bad_data_dir(d, "data dir in use by another node")
        self.assertTrue(first.alive(), "the running node is not disturbed")
        r = await asyncio.to_thread(http_request, first.port, "GET", "/health", None, key=None)
        self.assertEqual(r.status, 200)
        r = await asyncio.to_thread(api_publish, first.port, f"user:{unique_uid()}", "n", {})
        self.assertEqual(r.status, 200, f"{r}")

    async def test_data_dir_is_a_file(self):
        d = make_data_dir()
        path = os.path.join(d, "not-a-dir")
        with open(path, "w") as f:
            f.write("I am a file\n")
        self.run_bad_data_dir(path, "data dir is a regular file")
        self.run_bad_data_dir(os.path.join(path, "sub"), "data dir under a regular file")

    async def _corrupt(self, pick, what):
        d = make_data_dir()
        srv = self.boot(d)
        for i in range(50):
            r = await asyncio.to_thread(api_publish, srv.port, f"user:{i}", "n", {"i": i})
            self.assertEqual(r.status, 200)
        self.assertEqual(await asyncio.to_thread(srv.stop, 10), 0)
        # A second start recovers the write-ahead log into table files.
        srv = self.boot(d)
        self.assertEqual(await asyncio.to_thread(srv.stop, 10), 0)
        files = [os.path.join(root, f) for root, _, fs in os.walk(d) for f in fs]
        targets = [f for f in files if pick(os.path.basename(f))]
        if not targets:
            self.skipTest(f"no {what} file in the data dir after a clean stop: "
                          f"{[os.path.relpath(f, d) for f in files]}")
        for f in targets:
            with open(f, "wb") as fh:
                fh.write(b"\x00garbage\xff" * 7)
        self.run_bad_data_dir(d, f"corrupt {what}")

    async def test_corrupt_current(self):
        await self._corrupt(lambda n: n == "CURRENT", "CURRENT")

    async def test_corrupt_manifest(self):
        await self._corrupt(lambda n: n.startswith("MANIFEST"), "MANIFEST")

    async def test_corrupt_sst(self):
        await self._corrupt(lambda n: n.endswith(".sst"), ".sst")


if __name__ == "__main__":
    harness.main()
