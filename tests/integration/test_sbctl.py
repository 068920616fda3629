#!/usr/bin/python3
"""sbctl, the admin CLI, against real nodes: a 2-node cluster (mutual TLS) and
a single node, each with its admin interface on (admin.token). Every command
runs the real sbctl binary and checks its --json output against what the test
did through WebSocket clients; errors are checked by exit code and message.

    /usr/bin/python3 tests/integration/test_sbctl.py build/switchboard build/sbctl
"""

import asyncio
import json
import signal
import subprocess
import time

import harness
from harness import (SBTestCase, Cluster, clean_env, free_port, http_request, make_pki,
                     sbctl_path, token, unique_room, unique_uid)

ADMIN_TOKEN = "integration-admin-token-0123456789"
NODES = ("a", "b")


class SbctlBase(SBTestCase):
    def admin_address(self, server):
        self.assertIsNotNone(server.admin_port, f"{server.name}: no admin_open in its log")
        return f"127.0.0.1:{server.admin_port}"

    def sbctl_at(self, address, *args, admin_token=ADMIN_TOKEN, timeout=30):
        env = clean_env({"SWITCHBOARD_ADMIN_TOKEN": admin_token} if admin_token else None)
        env.pop("SBCTL_NODE", None)
        return subprocess.run([sbctl_path(), "--node", address, *args], capture_output=True,
                              text=True, env=env, timeout=timeout)

    def sbctl(self, *args, server=None, **kw):
        return self.sbctl_at(self.admin_address(server or self.asked()), *args, **kw)

    def ok_json(self, *args, server=None):
        r = self.sbctl(*args, "--json", server=server)
        self.assertEqual(r.returncode, 0, f"sbctl {' '.join(args)}: {r.stderr}{r.stdout}")
        return json.loads(r.stdout)

    def assertFails(self, result, code, text):
        self.assertEqual(result.returncode, code,
                         f"exit code; stdout {result.stdout!r} stderr {result.stderr!r}")
        self.assertIn(text, result.stderr)
        self.assertTrue(result.stderr.startswith("sbctl: "), result.stderr)

    async def user_on(self, server, room, uid):
        tok = token(uid, channels=[f"chat:{room}"])
        return await self.connect_ok(f"/ws/chat/{room}/", tok, server=server)

    async def tail(self, server, *args):
        env = clean_env({"SWITCHBOARD_ADMIN_TOKEN": ADMIN_TOKEN})
        return await asyncio.create_subprocess_exec(
            sbctl_path(), "--node", self.admin_address(server), "tail", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)

    async def tail_sees_message(self, tail_server, client, room, text):
        proc = await self.tail(tail_server, f"chat:{room}", "--since", "0", "--count", "1")
        await client.send({"type": "message", "message": text, "id": "t1"})
        await client.recv("ack")
        out, err = await asyncio.wait_for(proc.communicate(), 15)
        self.assertEqual(proc.returncode, 0, err.decode())
        lines = out.decode().splitlines()
        self.assertEqual(len(lines), 1, f"--count 1 prints one line: {lines}")
        event = json.loads(lines[0])
        self.assertEqual((event["type"], event["content"], event["channel"]),
                         ("message", text, f"chat:{room}"))
        # The tail is an observer: nobody saw it join or leave.
        await client.expect_none(("user_joined", "user_left"), duration=0.3)


class SbctlClusterTest(SbctlBase):
    start_class_server = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.nodes = Cluster(make_pki(NODES), "sbctl", names=NODES,
                            extra=[f"--admin.token={ADMIN_TOKEN}"])
        try:
            for n in NODES:
                cls.nodes.start(n)
            cls.nodes.wait_all_up()
        except Exception:
            cls.nodes.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.nodes.stop_all()
        cls.nodes.cleanup()
        super().tearDownClass()

    def _dump_logs(self):
        self.nodes.dump_logs(self.id())

    def asked(self):
        return self.nodes["a"]

    async def test_cluster_shows_both_members_with_counts(self):
        await self.user_on(self.nodes["b"], unique_room(), unique_uid())
        out = self.ok_json("cluster")
        members = {m["node"]: m for m in out["members"]}
        self.assertEqual(set(members), set(NODES))
        self.assertTrue(members["a"]["self"])
        self.assertFalse(members["b"]["self"])
        for m in members.values():
            self.assertEqual(m["state"], "up")
            self.assertIsInstance(m["uptime_s"], int)
            self.assertIsInstance(m["channels"], int)
        self.assertGreaterEqual(members["b"]["connections"], 1)
        table = self.sbctl("cluster").stdout
        self.assertRegex(table, r"(?m)^a \*\s+up\s")
        self.assertRegex(table, r"(?m)^b\s+up\s")

    async def test_user_lists_its_connections_on_both_nodes(self):
        room, uid = unique_room(), unique_uid()
        for n in NODES:
            await self.user_on(self.nodes[n], room, uid)
        out = self.ok_json("user", str(uid))
        conns = out["connections"]
        self.assertEqual(sorted(c["node"] for c in conns), ["a", "b"])
        for c in conns:
            self.assertEqual(c["user_id"], str(uid))
            self.assertEqual(c["route"], f"/ws/chat/{room}/")
            self.assertEqual(c["channels"], [f"chat:{room}"])
            self.assertTrue(c["remote"].startswith("127.0.0.1:"), c)
            self.assertGreaterEqual(c["age_s"], 0)
            self.assertIsInstance(c["queued_bytes"], int)
        limits = {r["node"]: r for r in out["rate_limit"]}
        self.assertEqual(set(limits), {"a", "b"})
        self.assertEqual(limits["a"]["burst"], 100000)
        self.assertIn(f"/ws/chat/{room}/", self.sbctl("user", str(uid)).stdout)

        self.assertEqual(len(self.ok_json("connections", "--user", str(uid))["connections"]), 2)
        self.assertEqual(len(self.ok_json("connections", "--user", str(uid), "--limit", "1")
                             ["connections"]), 1)
        by_channel = self.ok_json("connections", "--channel", f"chat:{room}", "--sort", "age")
        self.assertEqual([c["user_id"] for c in by_channel["connections"]], [str(uid)] * 2)
        users = {u["user_id"]: u for u in self.ok_json("users")["users"]}
        self.assertEqual(users[str(uid)]["connections"], 2)

    async def test_channels_and_channel_after_a_publish(self):
        room, u1, u2 = unique_room(), unique_uid(), unique_uid()
        ca = await self.user_on(self.nodes["a"], room, u1)
        cb = await self.user_on(self.nodes["b"], room, u2)
        pub = self.ok_json("publish", f"chat:{room}", "announcement", '{"text": "from sbctl"}')
        for c in (ca, cb):
            got = await c.recv("announcement")
            self.assertEqual((got["event_id"], got["data"]), (pub["event_id"], {"text": "from sbctl"}))

        chans = self.ok_json("channels", "--prefix", f"chat:{room}")["channels"]
        self.assertEqual(len(chans), 1, chans)
        ch = chans[0]
        self.assertEqual((ch["channel"], ch["members"]), (f"chat:{room}", 2))
        self.assertEqual((ch["last_event_id"], ch["epoch"]), (pub["event_id"], pub["epoch"]))
        self.assertIn(ch["owner"], NODES)
        self.assertEqual(ch["replicas"], [n for n in NODES if n != ch["owner"]])
        self.assertGreater(ch["events_per_second"], 0)
        self.assertEqual(sorted(n["node"] for n in ch["nodes"]), ["a", "b"])
        names = [c["channel"] for c in self.ok_json("channels", "--namespace", "chat")["channels"]]
        self.assertIn(f"chat:{room}", names)

        detail = self.ok_json("channel", f"chat:{room}")
        self.assertEqual((detail["owner"], detail["members"]), (ch["owner"], 2))
        self.assertEqual(sorted(p["user_id"] for p in detail["presence"]), sorted([u1, u2]))
        self.assertEqual(detail["recent"][-1]["data"], {"text": "from sbctl"})
        self.assertEqual(detail["retention"], {"history_size": 10000, "history_ttl_s": 604800})

    async def test_actors_and_one_actor(self):
        room, uid = unique_room(), unique_uid()
        await self.user_on(self.nodes["a"], room, uid)
        actors = self.ok_json("actors")["actors"]
        self.assertEqual({a["node"] for a in actors}, {"a"})
        self.assertLessEqual({"hub", "channel", "user", "connection", "membership", "replica"},
                             {a["kind"] for a in actors})
        ids = {a["id"]: a for a in actors}
        self.assertIn(f"channel:chat:{room}", ids)
        self.assertIn(f"user:{uid}", ids)
        self.assertGreater(ids["hub"]["handled"], 0)
        self.assertGreaterEqual(ids["hub"]["mailbox"], 0)
        kinds = {a["kind"] for a in self.ok_json("actors", "--kind", "channel")["actors"]}
        self.assertEqual(kinds, {"channel"})
        self.assertEqual({a["node"] for a in self.ok_json("actors", "--node", "b")["actors"]}, {"b"})

        one = self.ok_json("actor", f"channel:chat:{room}", "--node", "a")["actors"]
        self.assertEqual(len(one), 1)
        self.assertIn(one[0]["state"]["role"], ("primary", "follower"))
        self.assertIn(str(uid), one[0]["state"]["members"])
        # Node b may hold the user too: it may be the node counting the user's connections.
        user = {u["node"]: u["state"] for u in self.ok_json("actor", f"user:{uid}")["actors"]}
        self.assertEqual(user["a"]["connections"], "1")

    async def test_tail_prints_a_message_sent_on_another_node(self):
        room, uid = unique_room(), unique_uid()
        client = await self.user_on(self.nodes["a"], room, uid)
        await self.tail_sees_message(self.nodes["b"], client, room, "seen by tail")

    async def test_kick_user_closes_sockets_on_both_nodes(self):
        room, uid = unique_room(), unique_uid()
        clients = [await self.user_on(self.nodes[n], room, uid) for n in NODES]
        out = self.ok_json("kick", "user", str(uid))
        self.assertEqual(out["disconnected"], 2)
        for c in clients:
            await c.expect_close(4005)

    async def test_errors_have_exit_codes_and_messages(self):
        self.assertFails(self.sbctl("channel", f"chat:{unique_room('none')}"), 1, "no such channel")
        self.assertFails(self.sbctl("user", "nobody-here"), 1, "no such user")
        self.assertFails(self.sbctl("actor", "channel:chat:nothing-here"), 1, "no such actor")
        self.assertFails(self.sbctl("actors", "--node", "zz"), 1, "no such node")
        self.assertFails(self.sbctl("cluster", admin_token="not-the-admin-token"), 4, "token")
        self.assertFails(self.sbctl_at(f"127.0.0.1:{free_port()}", "cluster"), 3, "cannot connect")
        self.assertFails(self.sbctl("connections", "--sort", "size"), 2, "--sort")
        self.assertFails(self.sbctl("bogus"), 2, "unknown command")
        self.assertFails(self.sbctl("channel"), 2, "argument")
        self.assertFails(self.sbctl("tail", "no spaces allowed"), 2, "channel")
        self.assertFails(self.sbctl("publish", "chat:x", "message", "{}"), 2, "type")
        self.assertFails(self.sbctl("cluster", admin_token=None), 2, "no admin token")
        # The admin interface is on its own port only, and only with the token.
        a = self.nodes["a"]
        self.assertEqual(http_request(a.port, "GET", "/admin/cluster", key=ADMIN_TOKEN).status, 404)
        refused = http_request(a.admin_port, "GET", "/admin/cluster", key=None)
        self.assertEqual((refused.status, refused.json["error"]), (401, "unauthorized"))

    async def test_y_silent_member_shows_unreachable_without_hanging(self):
        b = self.nodes["b"]
        b.proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            out = self.ok_json("cluster")
            took = time.monotonic() - started
        finally:
            b.proc.send_signal(signal.SIGCONT)
        self.assertLess(took, 9, "the node asked must not wait for a silent member")
        members = {m["node"]: m for m in out["members"]}
        self.assertEqual(members["a"]["state"], "up")
        self.assertIn(members["b"]["state"], ("unreachable", "down"))
        self.assertIsNone(members["b"]["connections"])
        self.nodes.wait_all_up()

    async def test_z_drain_moves_clients_and_shows_draining(self):
        # Last in this class (the order is by name): node b stays draining.
        room, uid = unique_room(), unique_uid()
        client = await self.user_on(self.nodes["b"], room, uid)
        self.assertEqual(self.ok_json("drain", "b"), {"node": "b", "draining": True})
        await client.expect_close(1001, timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            states = {m["node"]: m["state"] for m in self.ok_json("cluster")["members"]}
            if states["b"] == "draining":
                break
            await asyncio.sleep(0.1)
        self.assertEqual(states, {"a": "up", "b": "draining"})
        health = http_request(self.nodes["b"].port, "GET", "/health", key=None)
        self.assertEqual(health.json["status"], "draining")
        self.assertTrue(self.nodes["b"].alive())
        await self.expect_http_status(f"/ws/chat/{room}/", 503, token(uid, channels=[f"chat:{room}"]),
                                      server=self.nodes["b"])
        await self.user_on(self.nodes["a"], room, uid)


class SbctlSingleNodeTest(SbctlBase):
    server_overrides = (f"--admin.token={ADMIN_TOKEN}",)

    def asked(self):
        return self.server

    async def test_cluster_user_tail_on_a_single_node(self):
        room, uid = unique_room(), unique_uid()
        client = await self.user_on(self.server, room, uid)
        members = self.ok_json("cluster")["members"]
        self.assertEqual([(m["node"], m["state"], m["self"], m["connections"]) for m in members],
                         [(harness.NODE_ID, "up", True, 1)])
        conns = self.ok_json("user", str(uid))["connections"]
        self.assertEqual([(c["node"], c["route"]) for c in conns],
                         [(harness.NODE_ID, f"/ws/chat/{room}/")])
        await self.tail_sees_message(self.server, client, room, "single node tail")

    async def test_admin_is_off_without_a_token(self):
        srv = self.start_server()
        self.assertIsNone(srv.admin_port)
        self.assertIn("admin_off", srv.log())
        self.assertIn("SWITCHBOARD_ADMIN_TOKEN", srv.log())

    async def test_z_drain_closes_clients_with_1001(self):
        room, uid = unique_room(), unique_uid()
        client = await self.user_on(self.server, room, uid)
        self.ok_json("drain", harness.NODE_ID)
        await client.expect_close(1001)
        self.assertEqual(self.ok_json("cluster")["members"][0]["state"], "draining")


if __name__ == "__main__":
    harness.main()
