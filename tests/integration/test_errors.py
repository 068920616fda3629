#!/usr/bin/python3
"""Bad client input: error frames with the right code, and the connection keeps
working afterwards (PROTOCOL sections 4 and 10)."""

import asyncio

import harness
from harness import SBTestCase, token, unique_room, unique_uid


class ErrorsTest(SBTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.room = unique_room("err")
        self.uid = unique_uid()
        self.a = await self.join(self.room, self.uid, name="Erin")
        self.next_event_id = 1
        self.seq = 0

    async def still_works(self, cl=None):
        """Sends a valid message; asserts its ack carries the next event id (so the
        bad frame stored nothing and the connection is still open)."""
        cl = cl or self.a
        self.seq += 1
        fid = f"ok-{self.seq}"
        await cl.send({"type": "message", "message": f"valid {self.seq}", "id": fid})
        ack = await cl.recv("ack", pred=lambda f: f.get("id") == fid, timeout=5)
        self.assertEqual(ack.get("event_id"), self.next_event_id,
                         "bad frames must store nothing (event ids have no holes)")
        m = await cl.recv("message", pred=lambda f: f.get("content") == f"valid {self.seq}")
        self.assertEqual(m.get("event_id"), self.next_event_id)
        self.next_event_id += 1

    async def expect_error(self, send, code, fid=None, cl=None):
        cl = cl or self.a
        if isinstance(send, (str, bytes)):
            await cl.ws.send(send)
        else:
            await cl.send(send)
        err = await cl.recv("error", timeout=5)
        self.assertEqual(err.get("code"), code, f"error code for {str(send)[:120]!r}: {err}")
        self.assertIsInstance(err.get("message"), str, f"error needs a message: {err}")
        self.assertTrue(err["message"], f"error message must not be empty: {err}")
        if fid is not None:
            self.assertEqual(err.get("id"), fid, f"error must carry the frame's id: {err}")
        self.assertFalse(cl.take("ack", pred=lambda f: fid is not None and f.get("id") == fid),
                         "a refused frame must not be acked")
        await self.still_works(cl)
        return err

    # -- bad_json ------------------------------------------------------------------

    async def test_bad_json_not_json(self):
        for raw in ("not json", "{", '{"type": "message", "message": "x"', "", "{'type':'ping'}"):
            with self.subTest(raw=raw):
                await self.expect_error(raw, "bad_json")

    async def test_bad_json_not_an_object(self):
        for raw in ("[1, 2, 3]", '[{"type": "ping"}]', "42", '"message"', "null", "true"):
            with self.subTest(raw=raw):
                await self.expect_error(raw, "bad_json")

    # -- invalid_message ----------------------------------------------------------

    async def test_missing_or_non_string_type(self):
        await self.expect_error({"id": "nt1", "message": "x"}, "invalid_message", "nt1")
        await self.expect_error({"type": 5, "id": "nt2"}, "invalid_message", "nt2")
        await self.expect_error({"type": None, "id": "nt3"}, "invalid_message", "nt3")
        await self.expect_error({"type": ["message"], "id": "nt4"}, "invalid_message", "nt4")
        await self.expect_error({}, "invalid_message")

    async def test_empty_or_missing_message(self):
        await self.expect_error({"type": "message", "message": "", "id": "e1"},
                                "invalid_message", "e1")
        await self.expect_error({"type": "message", "content": "", "id": "e2"},
                                "invalid_message", "e2")
        await self.expect_error({"type": "message", "id": "e3"}, "invalid_message", "e3")
        await self.expect_error({"type": "message", "message": 123, "id": "e4"},
                                "invalid_message", "e4")
        await self.expect_error({"type": "message", "message": None, "id": "e5"},
                                "invalid_message", "e5")
        await self.expect_error({"type": "message", "message": {"a": 1}, "id": "e6"},
                                "invalid_message", "e6")

    async def test_max_message_length_counts_characters(self):
        for ch in ("a", "é", "中", "😀"):
            with self.subTest(char=ch):
                ok = ch * 2000
                fid = f"len-ok-{ord(ch)}"
                await self.a.send({"type": "message", "message": ok, "id": fid})
                ack = await self.a.recv("ack", pred=lambda f: f.get("id") == fid)
                err = self.a.take("error")
                self.assertFalse(err, f"2000 x {ch!r} is within the limit: {err}")
                self.assertEqual(ack.get("event_id"), self.next_event_id)
                m = await self.a.recv("message", pred=lambda f: f.get("event_id") == self.next_event_id)
                self.assertEqual(m.get("content"), ok, "content must round-trip unchanged")
                self.next_event_id += 1
                await self.expect_error({"type": "message", "message": ch * 2001,
                                         "id": f"len-bad-{ord(ch)}"},
                                        "invalid_message", f"len-bad-{ord(ch)}")

    async def test_binary_frame(self):
        await self.expect_error(b"\x00\x01\x02binary", "invalid_message")
        await self.expect_error(b'{"type":"message","message":"in binary"}', "invalid_message")

    async def test_bad_field_types(self):
        await self.a.send({"type": "message", "message": "target"})
        await self.a.recv("message")
        self.next_event_id += 1
        cases = [
            ({"type": "read", "message_id": "1", "id": "f1"}, "f1"),
            ({"type": "read", "id": "f2"}, "f2"),
            ({"type": "reaction", "message_id": "1", "emoji": "👍", "id": "f3"}, "f3"),
            ({"type": "reaction", "message_id": 1, "id": "f4"}, "f4"),
            ({"type": "reaction", "message_id": 1, "emoji": "👍", "action": "explode",
              "id": "f5"}, "f5"),
            ({"type": "delete", "message_id": "abc", "id": "f6"}, "f6"),
            ({"type": "delete", "id": "f7"}, "f7"),
            ({"type": "message", "message": "x", "reply_to": "abc", "id": "f8"}, "f8"),
            ({"type": "typing", "is_typing": "yes", "id": "f9"}, "f9"),
            ({"type": "reaction", "message_id": 1, "emoji": 5, "id": "f10"}, "f10"),
        ]
        for frame, fid in cases:
            with self.subTest(frame=frame):
                await self.expect_error(frame, "invalid_message", fid)

    async def test_id_too_long_or_not_a_string(self):
        await self.expect_error({"type": "message", "message": "x", "id": "i" * 65},
                                "invalid_message")
        await self.expect_error({"type": "ping", "id": "p" * 65}, "invalid_message")
        await self.expect_error({"type": "message", "message": "x", "id": 5}, "invalid_message")
        # 64 characters is fine (count characters, not bytes).
        for fid in ("k" * 64, "é" * 64):
            await self.a.send({"type": "message", "message": "long id", "id": fid})
            ack = await self.a.recv("ack", pred=lambda f: f.get("id") == fid)
            self.assertEqual(ack.get("event_id"), self.next_event_id)
            self.next_event_id += 1
            self.assertFalse(self.a.take("error"))

    # -- unknown_type / forbidden / not_found ------------------------------------------

    async def test_unknown_type(self):
        await self.expect_error({"type": "dance", "id": "u1"}, "unknown_type", "u1")
        await self.expect_error({"type": "Message", "message": "x", "id": "u3"}, "unknown_type", "u3")

    async def test_forbidden_delete(self):
        other = await self.join(self.room, unique_uid(), name="Other")
        await other.send({"type": "message", "message": "not yours", "id": "o1"})
        ack = await other.recv("ack")
        target = ack["event_id"]
        self.next_event_id = target + 1
        await self.a.recv("message", pred=lambda f: f.get("event_id") == target)
        await self.expect_error({"type": "delete", "message_id": target, "id": "fd"},
                                "forbidden", "fd")

    async def test_not_found(self):
        await self.expect_error({"type": "delete", "message_id": 424242, "id": "nf"},
                                "not_found", "nf")

    async def test_forbidden_publish_on_read_only_routes(self):
        uid = unique_uid()
        routes = [
            ("/ws/leaderboard/", token(uid), None),
            ("/ws/dashboard/", token(uid, role="admin"), None),
            ("/ws/notifications/", token(uid), None),
            ("/ws/updates/", token(uid, role="cadet"), f"user:{uid}"),
            ("/ws/updates/", token(uid, role="cadet"), "role:cadet"),
        ]
        for i, (path, tok, channel) in enumerate(routes):
            with self.subTest(path=path, channel=channel):
                c = await self.connect_ok(path, tok)
                frame = {"type": "message", "message": "hi", "id": f"ro{i}"}
                if channel:
                    frame["channel"] = channel
                await c.send(frame)
                err = await c.recv("error")
                self.assertEqual((err.get("code"), err.get("id")), ("forbidden", f"ro{i}"),
                                 f"{path}: {err}")
                self.assertFalse(c.take("message"), f"{path}: nothing may be broadcast")
                # The connection is still open and answers.
                await c.send({"type": "ping", "timestamp": i, "id": f"rp{i}"})
                p = await c.recv("pong")
                self.assertEqual((p.get("timestamp"), p.get("id")), (i, f"rp{i}"))

    async def test_many_bad_frames_then_fine(self):
        bad = ["x", "[]", '{"type":1}', '{"type":"nope"}', b"\xff\xfe",
               '{"type":"message","message":""}'] * 5
        for raw in bad:
            await self.a.ws.send(raw)
        errs = await self.a.recv_n(len(bad), "error", timeout=10)
        self.assertEqual(len(errs), len(bad))
        await self.still_works()
        await self.still_works()


if __name__ == "__main__":
    harness.main()
