#!/usr/bin/python3
"""Cluster membership (issue 4, first part): nodes join over CAF's middleman
with mutual TLS from one private CA, see each other in /health, notice a
killed (kill -9) or hung (SIGSTOP) member within cluster.dead_after, take a
restarted member back by themselves, and refuse a peer whose certificate is
not from the CA."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import websockets

import harness
from harness import DataDirServer, make_data_dir, http_request

DEAD_AFTER = 2.0  # seconds, short for the test


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_pki(names):
    """The CA and node certificates from configs/cluster/make-certs.sh, plus a
    self-signed `rogue` certificate. Returns the folder."""
    d = tempfile.mkdtemp(prefix="sb-itest-pki-")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs",
                          "cluster", "make-certs.sh")
    subprocess.run([script, d, *names], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    "rogue.key", "-out", "rogue.pem", "-days", "30", "-subj", "/CN=rogue"],
                   cwd=d, check=True, capture_output=True)
    return d


class ClusterMembershipTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = make_pki(["a", "b", "c"])

    def setUp(self):
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            if s.proc is not None and s.proc.poll() is None:
                try:
                    s.proc.send_signal(signal.SIGCONT)
                except ProcessLookupError:
                    pass
            s.kill()

    def node(self, name, cluster_port, seeds, cert=None, data_dir=None):
        cert = cert or name
        overrides = [f"--node.id={name}", f"--cluster.port={cluster_port}",
                     "--cluster.seeds=" + harness.json.dumps(seeds),
                     f"--cluster.certificate={self.pki}/{cert}.pem",
                     f"--cluster.key={self.pki}/{cert}.key",
                     f"--cluster.ca_file={self.pki}/ca.pem",
                     "--cluster.heartbeat_interval=0.25",
                     f"--cluster.dead_after={DEAD_AFTER}"]
        srv = DataDirServer(data_dir or make_data_dir(), overrides=overrides, name=name)
        self.servers.append(srv)
        srv.start()
        return srv

    def members(self, srv):
        r = http_request(srv.port, "GET", "/health", key=None)
        self.assertEqual(r.status, 200, r)
        return {m["node"]: m for m in r.json["cluster"]["members"]}

    def wait_for(self, srv, want, timeout):
        """Polls /health until {node: state} includes `want`; returns seconds taken."""
        start = time.monotonic()
        seen = None
        while time.monotonic() - start < timeout:
            seen = {n: m["state"] for n, m in self.members(srv).items()}
            if all(seen.get(n) == s for n, s in want.items()):
                return time.monotonic() - start
            time.sleep(0.05)
        self.fail(f"{srv.name}: wanted {want}, /health shows {seen}\n{srv.log()[-3000:]}")

    def test_three_nodes_learn_each_other_from_one_seed(self):
        pa, pb, pc = free_port(), free_port(), free_port()
        a = self.node("a", pa, [])
        b = self.node("b", pb, [f"127.0.0.1:{pa}"])
        c = self.node("c", pc, [f"127.0.0.1:{pa}"])
        for srv in (a, b, c):
            self.wait_for(srv, {"a": "up", "b": "up", "c": "up"}, 10)
        m = self.members(a)
        self.assertTrue(m["a"]["self"])
        self.assertEqual(m["b"]["address"], f"127.0.0.1:{pb}")
        for srv in (c, b, a):
            self.assertEqual(srv.stop(10), 0, f"SIGTERM exit code\n{srv.log()[-2000:]}")

    def test_killed_member_is_down_then_rejoins_after_restart(self):
        pa, pb = free_port(), free_port()
        a = self.node("a", pa, [f"127.0.0.1:{pb}"])
        b = self.node("b", pb, [f"127.0.0.1:{pa}"])
        self.wait_for(a, {"b": "up"}, 10)
        b.sigkill()
        took = self.wait_for(a, {"b": "down"}, DEAD_AFTER + 3)
        self.assertLess(took, DEAD_AFTER + 3)
        b2 = self.node("b", pb, [f"127.0.0.1:{pa}"], data_dir=b.data_dir)
        self.wait_for(a, {"b": "up"}, 10)
        self.wait_for(b2, {"a": "up"}, 10)

    def test_hung_member_is_noticed_and_returns(self):
        pa, pb = free_port(), free_port()
        a = self.node("a", pa, [f"127.0.0.1:{pb}"])
        b = self.node("b", pb, [f"127.0.0.1:{pa}"])
        self.wait_for(a, {"b": "up"}, 10)
        b.proc.send_signal(signal.SIGSTOP)
        took = self.wait_for(a, {"b": "down"}, DEAD_AFTER + 5)
        self.assertGreater(took, DEAD_AFTER / 2, "a stopped node only falls silent")
        b.proc.send_signal(signal.SIGCONT)
        self.wait_for(a, {"b": "up"}, 15)

    def test_peer_without_a_certificate_from_the_ca_cannot_join(self):
        pa, pr = free_port(), free_port()
        a = self.node("a", pa, [])
        rogue = self.node("rogue", pr, [f"127.0.0.1:{pa}"], cert="rogue")
        time.sleep(2)
        self.assertNotIn("rogue", self.members(a))
        self.assertEqual(set(self.members(rogue)), {"rogue"})

    def test_disconnect_closes_the_users_sockets_on_every_node(self):
        pa, pb = free_port(), free_port()
        a = self.node("a", pa, [f"127.0.0.1:{pb}"])
        b = self.node("b", pb, [f"127.0.0.1:{pa}"])
        self.wait_for(a, {"b": "up"}, 10)
        self.wait_for(b, {"a": "up"}, 10)
        tok = harness.token("kickme", channels=["chat:kick"])

        async def scenario():
            socks = [await websockets.connect(
                f"ws://127.0.0.1:{srv.port}/ws/chat/kick/?token={tok}") for srv in (a, b)]
            for ws in socks:
                json.loads(await ws.recv())  # connection_established
            r = await asyncio.to_thread(http_request, a.port, "POST", "/api/disconnect",
                                        {"user_id": "kickme"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["disconnected"], 2, "one socket on each node")
            for ws in socks:
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)
                self.assertEqual(cm.exception.code, 4005)

        asyncio.run(scenario())

    def test_plain_tcp_needs_the_insecure_option(self):
        srv = DataDirServer(make_data_dir(), overrides=[f"--cluster.port={free_port()}"],
                            name="no-tls")
        self.servers.append(srv)
        rc = srv.run_to_exit(10)
        self.assertEqual(rc, 2, srv.log())
        self.assertIn("mutual TLS", srv.log())


if __name__ == "__main__":
    harness.main()
