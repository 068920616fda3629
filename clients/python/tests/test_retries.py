"""Retries reuse the publish's idempotency key, so that a retry never stores
twice: the node is killed (kill -9) after it stored the event and before its
answer reached the client, then restarted on the same data dir; the client,
retrying with backoff meanwhile, gets the first event's id and history holds
the event once. And a 503 is retried with the same key (a scripted server:
the real node answers 503 only in a cluster mid-failover, not on demand)."""

import asyncio
import http.server
import json
import threading
import unittest

import support
from support import harness

import switchboard
from switchboard import AsyncClient, Client

RETRY = {"retries": 12, "backoff": 0.1, "max_backoff": 0.5, "timeout": 3.0}


class KillMidRequestTest(support.AsyncTestCase):

    def setUp(self):
        self.data_dir = harness.make_data_dir()
        self.node = support.start_node(self.data_dir, name="kill-1")
        self.addCleanup(lambda: self.node.cleanup())
        self.relay = support.Relay(self.node.port)
        self.addCleanup(self.relay.close)

    def restart_after_cut(self):
        """Waits for the relay to kill the node, then starts it again."""
        self.assertTrue(self.relay.cut_done.wait(15), "the publish never reached the node")
        self.node = support.start_node(self.data_dir, name="kill-2")
        self.relay.upstream = self.node.port

    def check_stored_once(self, published, channel):
        self.assertEqual(published.event_id, 1, "the retry is answered with the first event")
        with Client(support.base_url(self.node), support.API_KEY) as sb:
            events = sb.history(channel).events
        self.assertEqual([(e["event_id"], e["data"]) for e in events], [(1, {"order": 42})],
                         "the event is stored once")
        self.assertGreaterEqual(len(self.relay.keys), 2, "the client retried")
        self.assertEqual(len(set(self.relay.keys)), 1,
                         f"every attempt sent the same Idempotency-Key: {self.relay.keys}")

    def test_sync_client(self):
        channel = f"user:{harness.unique_uid()}"
        self.relay.cut = self.node.sigkill
        result = {}
        sb = Client(self.relay.url, support.API_KEY, **RETRY)
        t = threading.Thread(target=lambda: result.update(
            p=sb.publish(channel, "order_paid", {"order": 42})))
        t.start()
        self.restart_after_cut()
        t.join(30)
        self.check_stored_once(result["p"], channel)

    async def test_async_client(self):
        channel = f"user:{harness.unique_uid()}"
        self.relay.cut = self.node.sigkill
        async with AsyncClient(self.relay.url, support.API_KEY, **RETRY) as sb:
            task = asyncio.create_task(sb.publish(channel, "order_paid", {"order": 42}))
            await asyncio.to_thread(self.restart_after_cut)
            published = await asyncio.wait_for(task, 30)
        self.check_stored_once(published, channel)


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers the statuses in `script` in turn, recording each request's key."""

    protocol_version = "HTTP/1.1"
    script = []
    keys = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).keys.append(self.headers.get("Idempotency-Key"))
        status = type(self).script.pop(0)
        body = (json.dumps({"channel": "dashboard", "event_id": 9, "epoch": "e"}) if status == 200
                else json.dumps({"error": "unavailable", "message": "owner down"})).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ServiceUnavailableTest(support.AsyncTestCase):

    def setUp(self):
        self.server = http.server.ThreadingHTTPServer((harness.HOST, 0), Scripted)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        self.url = f"http://{harness.HOST}:{self.server.server_address[1]}"
        Scripted.keys = []

    def test_sync_retries_503_with_the_same_key(self):
        Scripted.script = [503, 503, 200]
        with Client(self.url, support.API_KEY, retries=2, backoff=0.01) as sb:
            self.assertEqual(sb.publish("dashboard", "tick").event_id, 9)
        self.assertEqual(len(Scripted.keys), 3)
        self.assertEqual(len(set(Scripted.keys)), 1, f"{Scripted.keys}")
        Scripted.script = [503, 503]
        with Client(self.url, support.API_KEY, retries=1, backoff=0.01) as sb:
            with self.assertRaises(switchboard.Unavailable) as e:
                sb.publish("dashboard", "tick")
        self.assertEqual((e.exception.status, e.exception.code), (503, "unavailable"))

    async def test_async_retries_503_with_the_same_key(self):
        Scripted.script = [503, 200]
        async with AsyncClient(self.url, support.API_KEY, retries=1, backoff=0.01) as sb:
            self.assertEqual((await sb.publish("dashboard", "tick")).event_id, 9)
        self.assertEqual(len(Scripted.keys), 2)
        self.assertEqual(len(set(Scripted.keys)), 1, f"{Scripted.keys}")


if __name__ == "__main__":
    unittest.main()
