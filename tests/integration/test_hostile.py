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


# --- 3, 5, 9, 10, 13: deep JSON, secrets in logs, file modes, JWT base64, weak secrets ---


# --- 12: idempotency keys on the server API ---


def publish_with_key(port, channel, text, key=None, body_key=None, path="/api/publish"):
    """POST /api/publish (or /api/broadcast with `channel` a list) of an
    `announcement`, with the key as the Idempotency-Key header and/or the
    body's idempotency_key."""
    body = {"type": "announcement", "data": {"text": text}}
    if isinstance(channel, list):
        body["channels"] = channel
    else:
        body["channel"] = channel
    if body_key is not None:
        body["idempotency_key"] = body_key
    headers = {"Idempotency-Key": key} if key is not None else None
    return harness.http_request(port, "POST", path, body, headers=headers)


def stored_texts(port, channel):
    r = harness.api_history(port, channel, limit=500)
    assert r.status == 200, f"history of {channel}: {r}"
    return [(e["event_id"], e["data"]["text"]) for e in r.json["events"]]


class IdempotencyKeyTest(SBTestCase):
    """A backend that retries a publish with the same idempotency key gets the
    first answer back and the event is stored once (issue 12 item 12)."""

    async def test_retry_with_same_key_stores_once(self):
        ch = f"user:{unique_uid()}"
        port = self.server.port
        first = publish_with_key(port, ch, "graded", key="retry-1")
        self.assertEqual(first.status, 200, f"{first}")
        for again in (publish_with_key(port, ch, "graded", key="retry-1"),
                      publish_with_key(port, ch, "graded", body_key="retry-1"),
                      publish_with_key(port, ch, "graded", key="retry-1", body_key="retry-1")):
            self.assertEqual((again.status, again.json), (200, first.json),
                             "a retry with the same key is answered like the first")
        self.assertEqual(stored_texts(port, ch), [(first.json["event_id"], "graded")],
                         "one stored event for one key")

    async def test_different_keys_store_two_events(self):
        ch = f"user:{unique_uid()}"
        port = self.server.port
        a = publish_with_key(port, ch, "a", key="key-a")
        b = publish_with_key(port, ch, "b", body_key="key-b")
        c = publish_with_key(port, ch, "c")
        d = publish_with_key(port, ch, "c")
        self.assertEqual([r.status for r in (a, b, c, d)], [200] * 4)
        self.assertEqual([r.json["event_id"] for r in (a, b, c, d)], [1, 2, 3, 4],
                         "different keys, and publishes without a key, are all stored")

    async def test_broadcast_retry_stores_once_per_channel(self):
        chans = [f"user:{unique_uid()}", f"user:{unique_uid()}"]
        port = self.server.port
        publish_with_key(port, chans[1], "before", key="other-key")
        first = publish_with_key(port, chans, "x", key="bc-1", path="/api/broadcast")
        again = publish_with_key(port, chans, "x", key="bc-1", path="/api/broadcast")
        self.assertEqual(first.status, 200, f"{first}")
        self.assertEqual(first.json["results"], [{"channel": chans[0], "event_id": 1},
                                                 {"channel": chans[1], "event_id": 2}])
        self.assertEqual(again.json, first.json)
        self.assertEqual(len(stored_texts(port, chans[0])), 1)
        self.assertEqual(len(stored_texts(port, chans[1])), 2)

    async def test_key_never_matches_a_client_frame_id(self):
        """A backend's key and a client's frame id of the same text in the same
        channel are different publishes."""
        room = unique_room("idem")
        uid = unique_uid()
        c = await self.join(room, uid)
        await c.send({"type": "message", "message": "from the client", "id": "same"})
        ack = await c.recv("ack")
        r = publish_with_key(self.server.port, f"chat:{room}", "from the backend", key="same")
        self.assertEqual(r.status, 200, f"{r}")
        self.assertNotEqual(r.json["event_id"], ack["event_id"])
        r2 = publish_with_key(self.server.port, f"chat:{room}", "x", body_key=f"{uid}\x00same")
        self.assertEqual(r2.status, 400, "a key with a NUL (it could mimic a user's) is refused")

    async def test_bad_keys_are_400(self):
        ch = f"user:{unique_uid()}"
        port = self.server.port
        cases = [
            ("65 characters", {"key": "k" * 65}),
            ("65 characters in the body", {"body_key": "k" * 65}),
            ("empty header", {"key": ""}),
            ("not printable ASCII", {"body_key": "clé"}),
            ("header and body differ", {"key": "one", "body_key": "two"}),
        ]
        for what, kw in cases:
            r = publish_with_key(port, ch, what, **kw)
            self.assertEqual(r.status, 400, f"{what}: {r}")
            self.assertEqual(r.json.get("error"), "bad_request", f"{what}: {r}")
        r = harness.http_request(port, "POST", "/api/publish",
                                 {"channel": ch, "type": "announcement", "idempotency_key": 7})
        self.assertEqual(r.status, 400, f"a number as key: {r}")
        self.assertEqual(stored_texts(port, ch), [], "nothing stored for a bad key")
        ok = publish_with_key(port, ch, "max", key="k" * 64)
        self.assertEqual(ok.status, 200, f"64 characters are allowed: {ok}")

    async def test_key_survives_a_restart(self):
        d = harness.make_data_dir()
        srv = harness.DataDirServer(d, name="idem-restart")
        self.addCleanup(srv.cleanup)
        srv.start()
        ch = f"user:{unique_uid()}"
        first = publish_with_key(srv.port, ch, "once", key="restart-1")
        self.assertEqual(first.status, 200, f"{first}")
        srv.sigkill()
        srv2 = harness.DataDirServer(d, name="idem-restart-2")
        self.addCleanup(srv2.cleanup)
        srv2.start()
        again = publish_with_key(srv2.port, ch, "once", key="restart-1")
        self.assertEqual((again.status, again.json), (200, first.json),
                         "a retry after kill -9 and restart gets the first answer")
        self.assertEqual(len(stored_texts(srv2.port, ch)), 1)


if __name__ == "__main__":
    harness.main()
