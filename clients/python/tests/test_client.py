"""Client and AsyncClient against the real node: every call of the server
API, typed errors with the server's codes, keep-alive, and a dead address."""

import asyncio
import socket
import unittest

import support
from support import harness

import switchboard
from switchboard import AsyncClient, Client


def uid():
    return harness.unique_uid()


class NodeTestCase:
    """Mixin: one node for the class."""

    @classmethod
    def setUpClass(cls):
        cls.node = support.start_node(name=cls.__name__)
        cls.url = support.base_url(cls.node)

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()
        cls.node.cleanup()

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            print(f"\n--- node log (tail) ---\n{self.node.log_tail()}")
        return out


class SyncClientTest(NodeTestCase, unittest.TestCase):

    def setUp(self):
        self.sb = Client(self.url, support.API_KEY, timeout=5)
        self.addCleanup(self.sb.close)

    def test_publish_history_channel(self):
        ch = f"user:{uid()}"
        p = self.sb.publish(ch, "notification", {"title": "graded"})
        self.assertEqual((p.channel, p.event_id), (ch, 1))
        self.assertTrue(p.epoch)
        self.sb.publish(ch, "notification")
        h = self.sb.history(ch)
        self.assertEqual([e["event_id"] for e in h.events], [1, 2])
        self.assertEqual(h.events[0]["data"], {"title": "graded"})
        self.assertEqual(h.events[1]["data"], {})
        self.assertEqual((h.epoch, h.has_more), (p.epoch, False))
        self.assertEqual([e["event_id"] for e in self.sb.history(ch, since=1).events], [2])
        self.assertTrue(self.sb.history(ch, before=3, limit=1).has_more)
        info = self.sb.channel(ch)
        self.assertEqual((info.owner, info.epoch, info.last_event_id), ("py-node-1", p.epoch, 2))

    def test_same_key_is_stored_once(self):
        ch = f"user:{uid()}"
        a = self.sb.publish(ch, "order_paid", {"order": 7}, idempotency_key="order-7-paid")
        b = self.sb.publish(ch, "order_paid", {"order": 7}, idempotency_key="order-7-paid")
        self.assertEqual(a, b)
        self.assertEqual(len(self.sb.history(ch).events), 1)

    def test_broadcast(self):
        chans = [f"user:{uid()}", "role:mentor-" + harness.unique_room("r")]
        results = self.sb.broadcast(chans, "grade_update", {"grade": "A"})
        self.assertEqual([(r.channel, r.ok) for r in results], [(c, True) for c in chans])
        self.assertTrue(all(r.event_id >= 1 for r in results))

    def test_presence_and_disconnect(self):
        user = uid()

        async def scenario():
            c = await harness.open_ws(self.node, "/ws/notifications/",
                                      switchboard.tokens.mint(user, secret=support.JWT_SECRET,
                                                              name="Ada"))
            await c.recv("connection_established")
            users = await asyncio.to_thread(self.sb.presence, f"user:{user}")
            self.assertEqual([(u.user_id, u.username, u.connections) for u in users],
                             [(user, "Ada", 1)])
            n = await asyncio.to_thread(self.sb.disconnect, user)
            self.assertEqual(n, 1)
            await c.expect_close(4005)

        asyncio.run(scenario())

    def test_errors_are_typed_with_the_servers_code(self):
        with self.assertRaises(switchboard.BadRequest) as e:
            self.sb.publish(f"user:{uid()}", "message", {})
        self.assertEqual((e.exception.status, e.exception.code), (400, "bad_request"))
        self.assertIn("type", e.exception.message)
        with self.assertRaises(switchboard.BadRequest):
            self.sb.publish("no spaces allowed", "notification")
        for key in ("k" * 65, "", "line\r\nX-Injected: 1"):
            with self.assertRaises(ValueError, msg=repr(key)):
                self.sb.publish(f"user:{uid()}", "notification", idempotency_key=key)
        with Client(self.url, "wrong-key-wrong-key-wrong-key-wrong") as bad:
            with self.assertRaises(switchboard.Unauthorized) as e:
                bad.publish(f"user:{uid()}", "notification")
            self.assertEqual(e.exception.code, "unauthorized")
        with self.assertRaises(TypeError):
            self.sb.publish(f"user:{uid()}", "notification", ["not", "an", "object"])
        self.assertIsInstance(e.exception, switchboard.SwitchboardError)

    def test_keep_alive_uses_one_connection(self):
        ch = f"user:{uid()}"
        for _ in range(5):
            self.sb.publish(ch, "tick")
            self.sb.history(ch, limit=1)
        self.assertEqual(len(self.sb._transport._idle), 1, "one connection, kept alive")

    def test_async_client_usable_from_one_event_loop_after_another(self):
        ch = f"user:{uid()}"
        sb = AsyncClient(self.url, support.API_KEY)
        self.assertEqual(asyncio.run(sb.publish(ch, "tick")).event_id, 1)
        self.assertEqual(asyncio.run(sb.publish(ch, "tick")).event_id, 2)

    def test_health_needs_no_key(self):
        with Client(self.url, "") as anon:
            self.assertEqual(anon.health()["node"], "py-node-1")


class AsyncClientTest(NodeTestCase, support.AsyncTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.sb = AsyncClient(self.url, support.API_KEY, timeout=5)

    async def asyncTearDown(self):
        await self.sb.close()

    async def test_every_call(self):
        user = uid()
        ch = f"user:{user}"
        p = await self.sb.publish(ch, "notification", {"title": "graded"})
        self.assertEqual(p.event_id, 1)
        again = await self.sb.publish(ch, "notification", {"title": "graded"},
                                      idempotency_key="graded-1")
        self.assertEqual(again.event_id, 2)
        self.assertEqual(await self.sb.publish(ch, "notification", idempotency_key="graded-1"),
                         again)
        results = await self.sb.broadcast([ch, f"user:{uid()}"], "grade_update", {"g": 1})
        self.assertEqual([r.event_id for r in results], [3, 1])
        h = await self.sb.history(ch, since=2)
        self.assertEqual([e["type"] for e in h.events], ["grade_update"])
        self.assertEqual((await self.sb.channel(ch)).last_event_id, 3)
        c = await harness.open_ws(self.node, "/ws/notifications/",
                                  switchboard.tokens.mint(user, secret=support.JWT_SECRET))
        await c.recv("connection_established")
        self.assertEqual([u.user_id for u in await self.sb.presence(ch)], [user])
        self.assertEqual(await self.sb.disconnect(user), 1)
        await c.expect_close(4005)
        self.assertEqual(len(self.sb._transport._idle), 1, "one connection, kept alive")

    async def test_concurrent_calls_each_get_their_answer(self):
        ch = f"user:{uid()}"
        got = await asyncio.gather(*(self.sb.publish(ch, "tick", {"n": i}) for i in range(20)))
        self.assertEqual(sorted(p.event_id for p in got), list(range(1, 21)))
        self.assertLessEqual(len(self.sb._transport._idle), 8, "the pool stays bounded")

    async def test_errors(self):
        with self.assertRaises(switchboard.BadRequest) as e:
            await self.sb.history(f"user:{uid()}", since=1, before=2)
        self.assertEqual(e.exception.code, "bad_request")
        async with AsyncClient(self.url, "wrong-key-wrong-key-wrong-key-wrong") as bad:
            with self.assertRaises(switchboard.Unauthorized):
                await bad.channel("dashboard")


class NoNodeTest(support.AsyncTestCase):
    """Nothing listening, or a listener that never answers: TransportError
    after every attempt, and no longer than the attempts take."""

    def setUp(self):
        self.silent = socket.create_server((harness.HOST, 0))
        self.addCleanup(self.silent.close)
        with socket.create_server((harness.HOST, 0)) as s:
            self.closed_port = s.getsockname()[1]

    def test_sync(self):
        with Client(f"http://127.0.0.1:{self.closed_port}", support.API_KEY, retries=2,
                    backoff=0.01) as sb:
            with self.assertRaises(switchboard.TransportError) as e:
                sb.publish("dashboard", "tick")
            self.assertEqual(e.exception.attempts, 3)
        port = self.silent.getsockname()[1]
        with Client(f"http://127.0.0.1:{port}", support.API_KEY, retries=1, backoff=0.01,
                    timeout=0.3) as sb:
            with self.assertRaises(switchboard.TransportError) as e:
                sb.channel("dashboard")
            self.assertEqual(e.exception.attempts, 2)

    async def test_async(self):
        async with AsyncClient(f"http://127.0.0.1:{self.closed_port}", support.API_KEY,
                               retries=2, backoff=0.01) as sb:
            with self.assertRaises(switchboard.TransportError) as e:
                await sb.publish("dashboard", "tick")
            self.assertEqual(e.exception.attempts, 3)
        port = self.silent.getsockname()[1]
        async with AsyncClient(f"http://127.0.0.1:{port}", support.API_KEY, retries=1,
                               backoff=0.01, timeout=0.3) as sb:
            with self.assertRaises(switchboard.TransportError):
                await sb.channel("dashboard")


if __name__ == "__main__":
    unittest.main()
