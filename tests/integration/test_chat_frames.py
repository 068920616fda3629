#!/usr/bin/python3
"""Client frames on chat routes and the events they produce
(PROTOCOL sections 4, 5 and 10)."""

import asyncio

import harness
from harness import SBTestCase, token, unique_room, unique_uid, unique_suid


class ChatFramesTest(SBTestCase):

    def check_message(self, m, room, event_id, sender_id, content, reply_to=None,
                      sender_name=None):
        self.assertEqual(m.get("type"), "message")
        self.assertEqual(m.get("channel"), f"chat:{room}", f"channel of {m}")
        self.assertEqual(m.get("event_id"), event_id, f"event_id of {m}")
        self.assertEqual(m.get("message_id"), event_id, f"message_id must equal event_id: {m}")
        self.assertSameId(m.get("sender_id"), sender_id, "sender_id")
        self.assertIn("sender_name", m)
        self.assertIsInstance(m["sender_name"], str, f"sender_name: {m}")
        self.assertTrue(m["sender_name"], f"sender_name must not be empty: {m}")
        if sender_name is not None:
            self.assertEqual(m["sender_name"], sender_name)
        self.assertEqual(m.get("content"), content)
        self.assertEqual(m.get("reply_to"), reply_to, f"reply_to of {m}")
        self.assertTimestamp(m.get("timestamp"))
        self.assertNotIn("replayed", m, "live events are not marked replayed")

    # -- message -----------------------------------------------------------

    async def test_message_broadcast_fields_and_ack(self):
        room = unique_room()
        ua, ub = unique_uid(), unique_suid()
        a = await self.join(room, ua, name="Alice")
        b = await self.join(room, ub)
        await a.send({"type": "message", "message": "hello world", "id": "m1"})
        ack = await a.recv("ack")
        self.assertEqual(ack.get("id"), "m1")
        self.assertEqual(ack.get("event_id"), 1)
        for cl in (a, b):
            m = await cl.recv("message")
            self.check_message(m, room, 1, ua, "hello world", None, "Alice")

        # `content` alias and reply_to; string user id as sender.
        await b.send({"type": "message", "content": "hi back", "reply_to": 1, "id": "m2"})
        ack = await b.recv("ack")
        self.assertEqual((ack.get("id"), ack.get("event_id")), ("m2", 2))
        for cl in (a, b):
            m = await cl.recv("message")
            self.check_message(m, room, 2, ub, "hi back", 1)

        await a.send({"type": "message", "message": "third"})
        for cl in (a, b):
            m = await cl.recv("message")
            self.check_message(m, room, 3, ua, "third", None, "Alice")
        # No id -> no ack.
        await a.expect_none("ack", 0.3)

    async def test_unicode_content_roundtrip(self):
        room = unique_room()
        a = await self.join(room, unique_uid(), name="Zoë")
        b = await self.join(room, unique_uid())
        text = 'héllo 世界 😀 "quotes" \\ back\\slash \n newline \t tab \u2028'
        await a.send({"type": "message", "message": text})
        for cl in (a, b):
            m = await cl.recv("message")
            self.assertEqual(m.get("content"), text)
            self.assertEqual(m.get("sender_name"), "Zoë")

    async def test_event_ids_contiguous_same_order(self):
        room = unique_room()
        ua, ub = unique_uid(), unique_uid()
        a = await self.join(room, ua)
        b = await self.join(room, ub)
        n = 8

        async def send_many(cl, tag):
            for i in range(n):
                await cl.send({"type": "message", "message": f"{tag}{i}", "id": f"{tag}{i}"})

        await asyncio.gather(send_many(a, "a"), send_many(b, "b"))
        seq_a = await a.recv_n(2 * n, "message", timeout=10)
        seq_b = await b.recv_n(2 * n, "message", timeout=10)
        ids_a = [m["event_id"] for m in seq_a]
        ids_b = [m["event_id"] for m in seq_b]
        self.assertEqual(ids_a, list(range(1, 2 * n + 1)), "event ids 1..N with no holes, in order")
        self.assertEqual(ids_b, ids_a)
        self.assertEqual([m["content"] for m in seq_a], [m["content"] for m in seq_b],
                         "both members see the same events in the same order")
        self.assertEqual(sorted(m["content"] for m in seq_a),
                         sorted([f"a{i}" for i in range(n)] + [f"b{i}" for i in range(n)]))
        # Each sender's own messages keep their send order.
        for tag in "ab":
            mine = [m["content"] for m in seq_a if m["content"].startswith(tag)]
            self.assertEqual(mine, [f"{tag}{i}" for i in range(n)])
        # Acks match the broadcast event ids.
        by_content = {m["content"]: m["event_id"] for m in seq_a}
        for cl, tag in ((a, "a"), (b, "b")):
            acks = await cl.recv_n(n, "ack", timeout=5)
            for ack in acks:
                self.assertEqual(ack["event_id"], by_content[ack["id"]], f"ack {ack}")

    async def test_message_seen_by_second_connection_of_sender(self):
        room = unique_room()
        ua = unique_uid()
        a1 = await self.join(room, ua, name="A")
        a2 = await self.join(room, ua, name="A")
        await a1.send({"type": "message", "message": "to myself"})
        for cl in (a1, a2):
            m = await cl.recv("message")
            self.check_message(m, room, 1, ua, "to myself", None, "A")

    # -- typing --------------------------------------------------------------

    async def test_typing(self):
        room = unique_room()
        ua, ub = unique_uid(), unique_uid()
        a1 = await self.join(room, ua, name="Alice")
        a2 = await self.join(room, ua, name="Alice")
        b = await self.join(room, ub, name="Bob")

        cases = [
            ({"type": "typing", "is_typing": True, "id": "t1"}, True),
            ({"type": "typing", "is_typing": False, "id": "t2"}, False),
            ({"type": "typing_start", "id": "t3"}, True),
            ({"type": "typing_stop", "id": "t4"}, False),
        ]
        for frame, expected in cases:
            await a1.send(frame)
            ack = await a1.recv("ack", pred=lambda f: f.get("id") == frame["id"])
            self.assertNotIn("event_id", ack, f"typing acks carry no event_id: {ack}")
            t = await b.recv("typing")
            self.assertEqual(t.get("channel"), f"chat:{room}")
            self.assertSameId(t.get("user_id"), ua)
            self.assertEqual(t.get("username"), "Alice")
            self.assertIs(t.get("is_typing"), expected, f"after {frame}: {t}")
            self.assertNotIn("event_id", t, "typing is not stored")

        # Typing without an id: no ack, still broadcast.
        await a1.send({"type": "typing", "is_typing": True})
        t = await b.recv("typing")
        self.assertIs(t.get("is_typing"), True)

        # Bob typing reaches both of Alice's connections.
        await b.send({"type": "typing", "is_typing": True})
        for cl in (a1, a2):
            t = await cl.recv("typing")
            self.assertSameId(t.get("user_id"), ub)
            self.assertEqual(t.get("username"), "Bob")

        # A marker message after all that: typing never reached the typist's
        # own connections, and consumed no event ids.
        await b.send({"type": "message", "message": "marker", "id": "mk"})
        for cl in (a1, a2, b):
            m = await cl.recv("message")
            self.assertEqual(m["event_id"], 1, "typing must not consume event ids")
        await a1.expect_none("ack", 0.2, pred=lambda f: f.get("id") not in ("t1", "t2", "t3", "t4"))
        for cl in (a1, a2):
            mine = [f for f in cl.take("typing") if f.get("user_id") == ua]
            self.assertFalse(mine, f"typing echoed to the typist's own connection: {mine}")
        await b.expect_none("typing", 0.3, pred=lambda f: f.get("user_id") == ub)

    # -- read / reaction -------------------------------------------------------

    async def test_read(self):
        room = unique_room()
        ua, ub = unique_uid(), unique_uid()
        a = await self.join(room, ua)
        b = await self.join(room, ub)
        await a.send({"type": "message", "message": "read me"})
        await b.recv("message")
        await b.send({"type": "read", "message_id": 1, "id": "r1"})
        ack = await b.recv("ack")
        self.assertEqual((ack.get("id"), ack.get("event_id")), ("r1", 2))
        for cl in (a, b):
            r = await cl.recv("read")
            self.assertEqual(r.get("channel"), f"chat:{room}")
            self.assertEqual(r.get("event_id"), 2)
            self.assertSameId(r.get("user_id"), ub)
            self.assertEqual(r.get("message_id"), 1)
            self.assertTimestamp(r.get("timestamp"))

    async def test_reaction_add_and_remove(self):
        room = unique_room()
        ua, ub = unique_uid(), unique_suid()
        a = await self.join(room, ua)
        b = await self.join(room, ub)
        await a.send({"type": "message", "message": "react to me"})
        await b.recv("message")
        await b.send({"type": "reaction", "message_id": 1, "emoji": "👍", "id": "x1"})
        ack = await b.recv("ack")
        self.assertEqual((ack.get("id"), ack.get("event_id")), ("x1", 2))
        for cl in (a, b):
            r = await cl.recv("reaction")
            self.assertEqual(r.get("channel"), f"chat:{room}")
            self.assertEqual(r.get("event_id"), 2)
            self.assertSameId(r.get("user_id"), ub)
            self.assertEqual(r.get("message_id"), 1)
            self.assertEqual(r.get("emoji"), "👍")
            self.assertEqual(r.get("action"), "add", "action defaults to add")
            self.assertTimestamp(r.get("timestamp"))
        await b.send({"type": "reaction", "message_id": 1, "emoji": "👍", "action": "remove",
                      "id": "x2"})
        self.assertEqual((await b.recv("ack")).get("event_id"), 3)
        await a.send({"type": "reaction", "message_id": 1, "emoji": "🎉", "action": "add"})
        for cl in (a, b):
            r1, r2 = await cl.recv_n(2, "reaction")
            self.assertEqual((r1["event_id"], r1["action"], r1["emoji"]), (3, "remove", "👍"))
            self.assertSameId(r1["user_id"], ub)
            self.assertEqual((r2["event_id"], r2["action"], r2["emoji"]), (4, "add", "🎉"))
            self.assertSameId(r2["user_id"], ua)

    # -- delete ------------------------------------------------------------------

    async def test_delete_own_message(self):
        room = unique_room()
        ua, ub = unique_uid(), unique_uid()
        a = await self.join(room, ua)
        b = await self.join(room, ub)
        await a.send({"type": "message", "message": "oops"})
        await b.recv("message")
        await a.send({"type": "delete", "message_id": 1, "id": "d1"})
        ack = await a.recv("ack")
        self.assertEqual((ack.get("id"), ack.get("event_id")), ("d1", 2))
        for cl in (a, b):
            d = await cl.recv("delete")
            self.assertEqual(d.get("channel"), f"chat:{room}")
            self.assertEqual(d.get("event_id"), 2)
            self.assertEqual(d.get("message_id"), 1)
            self.assertSameId(d.get("user_id"), ua)
            self.assertTimestamp(d.get("timestamp"))

    async def test_delete_others_message_forbidden(self):
        room = unique_room()
        ua, ub, uc = unique_uid(), unique_uid(), unique_uid()
        a = await self.join(room, ua)
        b = await self.join(room, ub)
        c = await self.join(room, uc, role="cadet")
        await a.send({"type": "message", "message": "mine"})
        await b.recv("message")
        await c.recv("message")
        for cl, fid in ((b, "fb"), (c, "fc")):
            await cl.send({"type": "delete", "message_id": 1, "id": fid})
            err = await cl.recv("error")
            self.assertEqual(err.get("code"), "forbidden", f"{err}")
            self.assertEqual(err.get("id"), fid)
            self.assertIsInstance(err.get("message"), str)
        # Nothing was stored or broadcast; the next event is 2.
        await a.expect_none("delete", 0.3)
        await b.send({"type": "message", "message": "still here", "id": "ok"})
        ack = await b.recv("ack")
        self.assertEqual(ack.get("event_id"), 2)

    async def test_delete_by_admin_and_moderator(self):
        room = unique_room()
        ua, uadm, umod = unique_uid(), unique_uid(), unique_uid()
        a = await self.join(room, ua)
        adm = await self.join(room, uadm, role="admin")
        mod = await self.join(room, umod, role="moderator")
        await a.send({"type": "message", "message": "one"})
        await a.send({"type": "message", "message": "two"})
        await a.recv_n(2, "message")
        await adm.send({"type": "delete", "message_id": 1, "id": "da"})
        ack = await adm.recv("ack")
        self.assertEqual((ack.get("id"), ack.get("event_id")), ("da", 3))
        d = await a.recv("delete")
        self.assertEqual((d.get("event_id"), d.get("message_id")), (3, 1))
        self.assertIn(d.get("user_id"), (uadm, ua))
        await mod.send({"type": "delete", "message_id": 2, "id": "dm"})
        ack = await mod.recv("ack")
        self.assertEqual((ack.get("id"), ack.get("event_id")), ("dm", 4))
        d = await a.recv("delete")
        self.assertEqual((d.get("event_id"), d.get("message_id")), (4, 2))
        self.assertFalse(adm.take("error") + mod.take("error"))

    async def test_delete_not_found(self):
        room = unique_room()
        a = await self.join(room, unique_uid(), role="admin")
        await a.send({"type": "message", "message": "x"})
        await a.recv("message")
        await a.send({"type": "delete", "message_id": 999, "id": "nf"})
        err = await a.recv("error")
        self.assertEqual((err.get("code"), err.get("id")), ("not_found", "nf"))
        self.assertIsInstance(err.get("message"), str)
        await a.send({"type": "message", "message": "after", "id": "af"})
        ack = await a.recv("ack", pred=lambda f: f.get("id") == "af")
        self.assertEqual(ack.get("event_id"), 2, "a failed delete stores nothing")

    # -- ping / presence --------------------------------------------------------

    async def test_ping_pong(self):
        room = unique_room()
        a = await self.join(room, unique_uid())
        await a.send({"type": "ping", "timestamp": 1700000000123})
        p = await a.recv("pong")
        self.assertEqual(p.get("timestamp"), 1700000000123)
        await a.send({"type": "ping", "timestamp": "2026-01-13T18:30:00.123Z", "id": "pp"})
        p = await a.recv("pong")
        self.assertEqual(p.get("timestamp"), "2026-01-13T18:30:00.123Z")
        self.assertEqual(p.get("id"), "pp")
        await a.send({"type": "ping", "id": "p0"})
        p = await a.recv("pong")
        self.assertEqual(p.get("id"), "p0")
        self.assertFalse(a.take("ack"), "ping is answered by pong, not ack")
        # Pings do not consume event ids.
        await a.send({"type": "message", "message": "m", "id": "m"})
        self.assertEqual((await a.recv("ack")).get("event_id"), 1)

    async def test_presence(self):
        room = unique_room()
        ua, ub = unique_uid(), unique_suid()
        a1 = await self.join(room, ua, name="Alice")
        a2 = await self.join(room, ua, name="Alice")
        b = await self.join(room, ub, name="Bob")
        await asyncio.sleep(0.1)
        await a1.send({"type": "presence", "id": "pr1"})
        p = await a1.recv("presence")
        self.assertEqual(p.get("channel"), f"chat:{room}")
        self.assertEqual(p.get("id"), "pr1")
        users = p.get("users")
        self.assertIsInstance(users, list)
        by_id = {str(u.get("user_id")): u for u in users}
        self.assertEqual(set(by_id), {str(ua), ub}, f"presence users: {users}")
        self.assertSameId(by_id[str(ua)]["user_id"], ua, "presence user_id")
        self.assertSameId(by_id[ub]["user_id"], ub, "presence user_id")
        self.assertEqual(by_id[str(ua)].get("connections"), 2)
        self.assertEqual(by_id[ub].get("connections"), 1)
        self.assertEqual(by_id[str(ua)].get("username"), "Alice")
        self.assertEqual(by_id[ub].get("username"), "Bob")

        # Explicit channel; after one of Alice's connections closes.
        await a2.close()
        await asyncio.sleep(0.3)
        await b.send({"type": "presence", "channel": f"chat:{room}"})
        p = await b.recv("presence")
        by_id = {str(u.get("user_id")): u for u in p.get("users", [])}
        self.assertEqual(set(by_id), {str(ua), ub})
        self.assertEqual(by_id[str(ua)].get("connections"), 1)

        await a1.close()
        await asyncio.sleep(0.3)
        await b.send({"type": "presence"})
        p = await b.recv("presence")
        self.assertEqual([str(u.get("user_id")) for u in p.get("users", [])], [ub])

    async def test_big_room_members_leave_and_stay(self):
        # Past a few dozen members the room finds them by an index: every
        # leave must move the right entry, or messages and presence go astray.
        room = unique_room()
        uids = [unique_uid() for _ in range(48)]
        clients = [await self.join(room, u) for u in uids]
        for i in range(0, 48, 2):  # every other member leaves, first to last
            await clients[i].close()
        await asyncio.sleep(0.5)
        stay = clients[1::2]
        await stay[0].send({"type": "message", "message": "after", "id": "af"})
        for c in stay:
            m = await c.recv("message", pred=lambda f: f.get("content") == "after")
            self.assertEqual(m.get("content"), "after")
        await stay[-1].send({"type": "presence", "id": "pb"})
        p = await stay[-1].recv("presence", pred=lambda f: f.get("id") == "pb")
        self.assertEqual({str(u.get("user_id")) for u in p.get("users", [])},
                         {str(u) for u in uids[1::2]})
        for c in stay[:-1]:
            await c.close()
        await asyncio.sleep(0.5)
        await stay[-1].send({"type": "presence", "id": "pc"})
        p = await stay[-1].recv("presence", pred=lambda f: f.get("id") == "pc")
        self.assertEqual([str(u.get("user_id")) for u in p.get("users", [])], [str(uids[-1])])

    # -- user_joined / user_left ----------------------------------------------------

    async def test_user_joined_and_left(self):
        room = unique_room()
        ua, ub = unique_uid(), unique_uid()
        a = await self.join(room, ua, name="Alice")
        b1 = await self.join(room, ub, name="Bob")
        j = await a.recv("user_joined")
        self.assertEqual(j.get("channel"), f"chat:{room}")
        self.assertSameId(j.get("user_id"), ub)
        self.assertEqual(j.get("username"), "Bob")
        self.assertTimestamp(j.get("timestamp"))
        self.assertNotIn("event_id", j, "user_joined is not stored")

        b2 = await self.join(room, ub, name="Bob")
        await a.expect_none("user_joined", 0.4, pred=lambda f: f.get("user_id") == ub)

        await b1.close()
        await a.expect_none("user_left", 0.5, pred=lambda f: f.get("user_id") == ub)

        await b2.close()
        left = await a.recv("user_left", timeout=5)
        self.assertEqual(left.get("channel"), f"chat:{room}")
        self.assertSameId(left.get("user_id"), ub)
        self.assertEqual(left.get("username"), "Bob")
        self.assertTimestamp(left.get("timestamp"))
        self.assertNotIn("event_id", left)

        # Joins and leaves took no event ids.
        await a.send({"type": "message", "message": "first", "id": "f"})
        self.assertEqual((await a.recv("ack")).get("event_id"), 1)
        # Rejoin after leaving: a new user_joined.
        await self.join(room, ub, name="Bob")
        j = await a.recv("user_joined", pred=lambda f: f.get("user_id") == ub)
        self.assertNotIn("event_id", j)

    async def test_channel_restart_consistent(self):
        """When every member leaves, the channel may be dropped: then it starts over
        with a new epoch at 0; otherwise it keeps its epoch and last_event_id."""
        room = unique_room()
        ua = unique_uid()
        a = await self.join(room, ua)
        epoch = a.established["channels"][0]["epoch"]
        for i in range(3):
            await a.send({"type": "message", "message": str(i)})
        await a.recv_n(3, "message")
        await a.close()
        await asyncio.sleep(0.5)
        b = await self.join(room, ua)
        ch = b.established["channels"][0]
        await b.send({"type": "message", "message": "next", "id": "n"})
        ack = await b.recv("ack")
        if ch["epoch"] == epoch:
            self.assertEqual(ch["last_event_id"], 3, f"same epoch must keep the events: {ch}")
            self.assertEqual(ack.get("event_id"), 4)
        else:
            self.assertEqual(ch["last_event_id"], 0, f"new epoch starts over: {ch}")
            self.assertEqual(ack.get("event_id"), 1)

    async def test_rooms_are_isolated(self):
        r1, r2 = unique_room(), unique_room()
        u = unique_uid()
        a = await self.join(r1, u)
        b = await self.join(r2, unique_uid())
        await a.send({"type": "message", "message": "only r1", "id": "x"})
        ack = await a.recv("ack")
        self.assertEqual(ack.get("event_id"), 1)
        await b.expect_none("message", 0.4)
        await b.send({"type": "message", "message": "only r2", "id": "y"})
        self.assertEqual((await b.recv("ack")).get("event_id"), 1, "event ids are per channel")
        await a.expect_none("message", 0.3, pred=lambda f: f.get("content") == "only r2")

    # -- idempotent sends ----------------------------------------------------------

    async def test_idempotent_resend(self):
        room = unique_room()
        ua, ub = unique_uid(), unique_uid()
        a = await self.join(room, ua)
        b = await self.join(room, ub)
        frame = {"type": "message", "message": "once", "id": "dup-1"}
        await a.send(frame)
        ack1 = await a.recv("ack")
        self.assertEqual((ack1.get("id"), ack1.get("event_id")), ("dup-1", 1))
        await a.send(frame)
        ack2 = await a.recv("ack")
        self.assertEqual((ack2.get("id"), ack2.get("event_id")), ("dup-1", 1),
                         "a resend of the same id returns the first event_id")
        # The same id from another user is a different frame.
        await b.send({"type": "message", "message": "mine", "id": "dup-1"})
        ack3 = await b.recv("ack")
        self.assertEqual(ack3.get("event_id"), 2)
        msgs = await a.recv_n(2, "message")
        self.assertEqual([m["event_id"] for m in msgs], [1, 2])
        await a.expect_none("message", 0.4)
        self.assertFalse(a.take("error"), "a resend is not an error")

        # Delete resend: the first delete wins over not_found.
        await a.send({"type": "delete", "message_id": 1, "id": "del-1"})
        d1 = await a.recv("ack", pred=lambda f: f.get("id") == "del-1")
        self.assertEqual(d1.get("event_id"), 3)
        await a.send({"type": "delete", "message_id": 1, "id": "del-1"})
        d2 = await a.recv(("ack", "error"), pred=lambda f: f.get("id") == "del-1")
        self.assertEqual((d2.get("type"), d2.get("event_id")), ("ack", 3),
                         f"an idempotent resend wins over not_found: {d2}")
        await b.recv("delete")
        await b.expect_none("delete", 0.4)
        await a.send({"type": "message", "message": "next", "id": "dup-2"})
        self.assertEqual((await a.recv("ack", pred=lambda f: f.get("id") == "dup-2"))
                         .get("event_id"), 4)

    async def test_idempotency_is_per_channel(self):
        r1, r2 = unique_room(), unique_room()
        uid = unique_uid()
        tok = token(uid, channels=[f"chat:{r1}", f"chat:{r2}"])
        c1 = await self.connect_ok(f"/ws/chat/{r1}/", tok)
        c2 = await self.connect_ok(f"/ws/chat/{r2}/", tok)
        for c in (c1, c2):
            await c.send({"type": "message", "message": "same id", "id": "same"})
            ack = await c.recv("ack")
            self.assertEqual(ack.get("event_id"), 1)
        m = await c2.recv("message", channel=f"chat:{r2}")
        self.assertEqual(m["content"], "same id")


class MultiplexTest(SBTestCase):
    """subscribe / unsubscribe on /ws/ (with `since`: test_replay.py)."""

    async def test_subscribe_receive_publish_unsubscribe(self):
        room = unique_room()
        uid, other = unique_uid(), unique_uid()
        member = await self.join(room, other, name="Member")
        mux = await self.connect_ok("/ws/", token(uid, name="Mux", channels=[f"chat:{room}"]))
        self.assertEqual(mux.established.get("channels"), [])

        await member.send({"type": "message", "message": "before", "id": "b"})
        await member.recv("ack")

        await mux.send({"type": "subscribe", "channel": f"chat:{room}", "id": "s1"})
        sub = await mux.recv("subscribed")
        self.assertEqual(sub.get("channel"), f"chat:{room}")
        self.assertEqual(sub.get("id"), "s1")
        self.assertEqual(sub.get("epoch"), member.established["channels"][0]["epoch"])
        self.assertEqual(sub.get("last_event_id"), 1)
        j = await member.recv("user_joined", pred=lambda f: f.get("user_id") == uid)
        self.assertEqual(j.get("username"), "Mux")

        await member.send({"type": "message", "message": "live"})
        m = await mux.recv("message")
        self.assertEqual((m.get("channel"), m.get("event_id"), m.get("content")),
                         (f"chat:{room}", 2, "live"))

        await mux.send({"type": "message", "channel": f"chat:{room}", "message": "from mux",
                        "id": "mm"})
        ack = await mux.recv("ack")
        self.assertEqual(ack.get("event_id"), 3)
        m = await member.recv("message", pred=lambda f: f.get("event_id") == 3)
        self.assertSameId(m.get("sender_id"), uid)

        await mux.send({"type": "subscribe", "channel": f"user:{uid}", "id": "s2"})
        sub = await mux.recv("subscribed", pred=lambda f: f.get("id") == "s2")
        self.assertEqual((sub.get("channel"), sub.get("last_event_id")), (f"user:{uid}", 0))

        await mux.send({"type": "unsubscribe", "channel": f"chat:{room}", "id": "u1"})
        uns = await mux.recv("unsubscribed")
        self.assertEqual((uns.get("channel"), uns.get("id")), (f"chat:{room}", "u1"))
        self.assertEqual(uns.get("last_event_id"), 3)
        self.assertIn("epoch", uns)
        await member.recv("user_left", pred=lambda f: f.get("user_id") == uid)
        mux.take("message")
        await member.send({"type": "message", "message": "after unsubscribe", "id": "au"})
        await member.recv("ack", pred=lambda f: f.get("id") == "au")
        await mux.expect_none("message", 0.5)

    async def test_frames_right_after_subscribe_act_on_the_channel(self):
        """A client may send on a channel as soon as it has sent `subscribe`,
        without waiting for `subscribed`: those frames are handled after the
        subscription, never refused as 'not subscribed'."""
        for round_ in range(5):
            room = unique_room()
            uid = unique_uid()
            mux = await self.connect_ok("/ws/", token(uid, channels=[f"chat:{room}"]))
            await mux.send({"type": "subscribe", "channel": f"chat:{room}", "id": "s"})
            for i in range(3):
                await mux.send({"type": "message", "channel": f"chat:{room}",
                                "message": f"m{i}", "id": f"m{i}"})
            acks = [await mux.recv("ack", pred=lambda f, i=i: f.get("id") == f"m{i}")
                    for i in range(3)]
            self.assertEqual([a.get("event_id") for a in acks], [1, 2, 3], f"round {round_}")
            self.assertFalse(mux.take("error"), f"round {round_}: no frame refused")
            await mux.close()

    async def test_forbidden_subscribe(self):
        uid = unique_uid()
        room = unique_room()
        mux = await self.connect_ok("/ws/", token(uid, role="cadet"))
        for i, ch in enumerate((f"chat:{room}", "dashboard", "role:admin", f"user:{uid + 1}")):
            with self.subTest(channel=ch):
                await mux.send({"type": "subscribe", "channel": ch, "id": f"f{i}"})
                err = await mux.recv("error")
                self.assertEqual((err.get("code"), err.get("id")), ("forbidden", f"f{i}"), f"{err}")
                self.assertFalse(mux.take("subscribed"))
        # The connection stays open and gets nothing from that room.
        member = await self.join(room, unique_uid())
        await member.send({"type": "message", "message": "secret", "id": "x"})
        await member.recv("ack")
        await mux.expect_none("message", 0.5)
        await mux.send({"type": "ping", "id": "p"})
        self.assertEqual((await mux.recv("pong")).get("id"), "p")


if __name__ == "__main__":
    harness.main()
