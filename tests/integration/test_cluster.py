#!/usr/bin/python3
"""Cluster behaviour as a client sees it (PROTOCOL section 9): three nodes on
loopback with mutual TLS, each channel owned by one node that sequences it,
events replicated (`cluster.replication`) before they are acknowledged.

What these tests prove, from the outside only (WebSocket and HTTP):

- order: publishers on every node, over WebSocket and the server API, and
  every subscriber on every node sees one identical sequence of event ids;
- presence and typing are cluster-wide, `user_joined` / `user_left` once per
  user (not per connection or node), a dead node's users leave;
- replay and history answer the same from any node;
- failover: kill -9 or SIGSTOP of a channel's owner loses no acknowledged
  event, reuses no id, keeps the epoch; a hung node comes back without
  forking the channel; a restarted node rejoins and ids go on;
- drain: SIGTERM hands the channels over, closes clients with 1001, exits 0;
- the per-user connection limit counts connections on all nodes (4008).

The ids and channel ownership come from GET /api/channel (owner, replicas,
epoch, last_event_id). Publishes that fail while ownership moves are retried
by the test, as an application would (same frame `id` on WebSocket, so the
server's idempotency keeps them single); only acknowledged events are required.
"""

import asyncio
import json
import signal
import sys
import time

import websockets
import websockets.exceptions

import harness
from harness import (SBTestCase, DataDirServer, Closed, Cluster, make_data_dir, make_pki,
                     free_port, cluster_overrides, cluster_states, api_channel, api_presence,
                     http_request, api_history, open_ws, token, unique_room, unique_uid,
                     CLUSTER_DEAD_AFTER as DEAD_AFTER, FAST, NAMES)

APP_TYPE = "announcement"  # type of the events published through the server API


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def without_replayed(frame):
    return {k: v for k, v in frame.items() if k != "replayed"}


def key_of(event):
    """The unique text the test put into an event: a message's content, or
    data.text of an API-published event."""
    if event.get("type") == "message":
        return event.get("content")
    data = event.get("data")
    if isinstance(data, dict):
        return data.get("text")
    return None


def abort(client):
    """Drops a connection at once (no closing handshake: the node may be hung)."""
    if client is None:
        return
    try:
        client.ws.transport.abort()
    except Exception:
        pass


def ids_of(events):
    return [e.get("event_id") for e in events]


def chat_token(room, uid):
    return token(uid, name=f"U{uid}", channels=[f"chat:{room}"])


class Ledger:
    """Acknowledged events: event_id -> the key the test published. Records
    contradictions (one id acknowledged for two keys, or one key for two ids)."""

    def __init__(self):
        self.acked = {}
        self.by_key = {}
        self.times = {}
        self.conflicts = []

    def ack(self, event_id, key, via):
        if not isinstance(event_id, int):
            self.conflicts.append(f"{key} via {via}: acknowledged without an integer "
                                  f"event_id: {event_id!r}")
            return
        prev = self.acked.get(event_id)
        if prev is not None and prev != key:
            self.conflicts.append(f"event_id {event_id} acknowledged for {prev!r} and, via "
                                  f"{via}, again for {key!r}: an id was reused")
        prev_id = self.by_key.get(key)
        if prev_id is not None and prev_id != event_id:
            self.conflicts.append(f"{key!r} acknowledged as {prev_id} and then as {event_id} "
                                  f"via {via}: an idempotent resend was stored twice")
        self.acked[event_id] = key
        self.by_key[key] = event_id
        self.times[event_id] = time.monotonic()

    def last(self):
        return max(self.acked) if self.acked else 0

    def count_after(self, t):
        return sum(1 for x in self.times.values() if x > t)


class Follower:
    """A member of chat:{room} that records every stored event of the channel,
    and on a closed connection reconnects to the next usable node with
    ?last_event_id=<last seen>, as a client library does."""

    def __init__(self, room, uid, targets, label):
        self.room = room
        self.ch = f"chat:{room}"
        self.tok = chat_token(room, uid)
        self.targets = targets
        self.label = label
        self.events = []       # stored events in arrival order, over every connection
        self.completes = []    # replay_complete frames
        self.epochs = []       # epoch in each connection_established
        self.closes = []       # (node, close code)
        self.nodes = []        # node of each connection
        self.connect_errors = []
        self.crash = None
        self.conn = None
        self.node = None
        self.task = None
        self._stop = False

    @property
    def last(self):
        return self.events[-1].get("event_id", 0) if self.events else 0

    async def _connect(self, deadline):
        while time.monotonic() < deadline and not self._stop:
            for node in self.targets():
                try:
                    c = await open_ws(node, f"/ws/chat/{self.room}/", self.tok,
                                      query=f"last_event_id={self.last}",
                                      label=f"{self.label}@{node.node_id}", open_timeout=3)
                except Exception as e:
                    self.connect_errors.append((node.node_id, repr(e)[:200]))
                    continue
                try:
                    first = await c._recv_one(3)
                except Exception as e:
                    self.connect_errors.append((node.node_id, repr(e)[:200]))
                    abort(c)
                    continue
                if first.get("type") != "connection_established":
                    self.connect_errors.append((node.node_id, first))
                    abort(c)
                    continue
                chans = first.get("channels") or [{}]
                self.epochs.append(chans[0].get("epoch"))
                self.conn, self.node = c, node
                self.nodes.append(node.node_id)
                return True
            await asyncio.sleep(0.2)
        return False

    async def start(self, timeout=5.0):
        if not await self._connect(time.monotonic() + timeout):
            raise AssertionError(f"{self.label}: could not connect: {self.connect_errors[-3:]}")
        self.task = asyncio.create_task(self._run())
        return self

    async def _run(self):
        try:
            while not self._stop:
                if self.conn is None:
                    if not await self._connect(time.monotonic() + 30):
                        return
                    continue
                try:
                    f = await self.conn._recv_one(0.5)
                except asyncio.TimeoutError:
                    continue
                except Closed as c:
                    self.closes.append((self.node.node_id, c.code))
                    self.conn = None
                    continue
                if f.get("channel") != self.ch:
                    continue
                if f.get("type") == "replay_complete":
                    self.completes.append(f)
                elif "event_id" in f and f.get("type") != "ack":
                    self.events.append(f)
        except Exception as e:  # shown by wait_last / check
            self.crash = repr(e)

    def summary(self):
        return (f"{self.label}: last={self.last} ids={ids_of(self.events)[-12:]} "
                f"nodes={self.nodes} closes={self.closes} crash={self.crash} "
                f"connect_errors={self.connect_errors[-3:]}")

    async def wait_last(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.last < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.last < n:
            raise AssertionError(f"follower did not get up to event {n} within {timeout}s: "
                                 f"{self.summary()}")

    async def stop(self):
        self._stop = True
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, 3)
            except Exception:
                self.task.cancel()
        abort(self.conn)


class Publisher:
    """A loop of `one()` sends, each retried until acknowledged or given up."""

    async def publish(self, n=None, stop=None, give_up=15.0):
        while (n is None or self.sent < n) and not (stop is not None and stop.is_set()):
            await self.one(f"{self.prefix}-{self.sent}", give_up)
            self.sent += 1
        self.done()

    def done(self):
        pass


class WsPublisher(Publisher):
    """Sends `message` frames with ids to chat:{room}, one at a time, each
    until acknowledged: on an error frame it resends the same id, on a
    timeout or a closed connection it reconnects (next usable node) and
    resends the same id. Acks go to the ledger."""

    def __init__(self, room, uid, targets, prefix, ledger, ack_timeout=3.0):
        self.room = room
        self.tok = chat_token(room, uid)
        self.targets = targets
        self.prefix = prefix
        self.ledger = ledger
        self.ack_timeout = ack_timeout
        self.conn = None
        self.node = None
        self.rot = 0
        self.failures = []  # (key, what went wrong) for attempts that were not acked
        self.unacked = []
        self.sent = 0

    async def _connect(self, deadline):
        while time.monotonic() < deadline:
            targets = self.targets()
            for k in range(len(targets)):
                node = targets[(self.rot + k) % len(targets)]
                try:
                    c = await open_ws(node, f"/ws/chat/{self.room}/", self.tok,
                                      label=f"{self.prefix}@{node.node_id}", open_timeout=3)
                    first = await c._recv_one(3)
                except Exception as e:
                    self.failures.append((None, f"connect {node.node_id}: {e!r}"[:200]))
                    continue
                if first.get("type") != "connection_established":
                    self.failures.append((None, f"connect {node.node_id}: {first}"))
                    abort(c)
                    continue
                self.conn, self.node = c, node
                return True
            await asyncio.sleep(0.2)
        return False

    async def _reply(self, key, timeout):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                f = await self.conn._recv_one(remaining)
            except asyncio.TimeoutError:
                return None
            if f.get("type") in ("ack", "error") and f.get("id") == key:
                return f

    def _drop(self):
        abort(self.conn)
        self.conn = None
        self.rot += 1

    async def one(self, key, give_up=15.0):
        start = time.monotonic()
        while time.monotonic() - start < give_up:
            if self.conn is None and not await self._connect(start + give_up):
                break
            try:
                await self.conn.send({"type": "message", "message": key, "id": key})
                reply = await self._reply(key, self.ack_timeout)
            except (Closed, websockets.exceptions.ConnectionClosed) as e:
                self.failures.append((key, f"closed on {self.node.node_id}: {e}"))
                self._drop()
                continue
            if reply is None:
                self.failures.append((key, f"no ack within {self.ack_timeout}s on "
                                           f"{self.node.node_id}"))
                self._drop()
                continue
            if reply.get("type") == "ack":
                self.ledger.ack(reply.get("event_id"), key, f"ws@{self.node.node_id}")
                return True
            self.failures.append((key, reply))
            await asyncio.sleep(0.1)
        self.unacked.append(key)
        return False

    def done(self):
        abort(self.conn)
        self.conn = None


class ApiPublisher(Publisher):
    """POST /api/publish of `announcement` events, one at a time, each until it
    gets a 200; a failed attempt (error status, error JSON, refused, timeout)
    is retried with a new key (and no Idempotency-Key, so each attempt is a
    publish of its own), on the next usable node."""

    def __init__(self, channel, targets, prefix, ledger, timeout=3.0):
        self.channel = channel
        self.targets = targets
        self.prefix = prefix
        self.ledger = ledger
        self.timeout = timeout
        self.rot = 0
        self.failures = []
        self.unacked = []
        self.sent = 0

    async def one(self, base, give_up=15.0):
        start = time.monotonic()
        attempt = 0
        while time.monotonic() - start < give_up:
            targets = self.targets()
            if not targets:
                await asyncio.sleep(0.2)
                continue
            node = targets[self.rot % len(targets)]
            attempt += 1
            key = f"{base}.{attempt}"
            try:
                r = await asyncio.to_thread(
                    http_request, node.port, "POST", "/api/publish",
                    {"channel": self.channel, "type": APP_TYPE, "data": {"text": key}},
                    timeout=self.timeout)
            except Exception as e:
                self.failures.append((key, f"{node.node_id}: {e!r}"[:200]))
                self.rot += 1
                continue
            if r.status == 200 and isinstance(r.json, dict) and "event_id" in r.json:
                self.ledger.ack(r.json["event_id"], key, f"api@{node.node_id}")
                return r.json
            self.failures.append((key, f"{node.node_id}: {r}"))
            self.rot += 1
            await asyncio.sleep(0.1)
        self.unacked.append(base)
        return None



# --------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------

class ClusterBase(SBTestCase):
    """No single class server: tests run on clusters of three nodes. The
    PKI is made once for every class."""

    start_class_server = False
    pki = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if ClusterBase.pki is None:
            ClusterBase.pki = make_pki(list(NAMES))

    def run(self, result=None):
        self._clusters = []
        try:
            return super().run(result)
        finally:
            for cl in self._clusters:
                cl.cleanup()

    def _dump_logs(self):
        super()._dump_logs()
        for cl in getattr(self, "_clusters", []) + list(getattr(type(self), "shared", []) or []):
            cl.dump_logs(self.id())

    def cluster(self, extra=(), names=NAMES):
        """A fresh, formed cluster for this test (killed after it)."""
        cl = Cluster(ClusterBase.pki, self._testMethodName, names=names, extra=extra)
        self._clusters.append(cl)
        self.addCleanup(cl.kill_all)
        for n in names:
            cl.start(n)
        cl.wait_all_up()
        return cl

    # -- HTTP, off the event loop ---------------------------------------------

    async def http(self, node, method, path, body=None, timeout=5.0):
        return await asyncio.to_thread(http_request, node.port, method, path, body,
                                       timeout=timeout)

    async def states(self, node):
        return await asyncio.to_thread(cluster_states, node.port)

    async def wait_states(self, observers, want, timeout):
        """Polls /health of each observer until it shows {node: state} for
        every entry of `want`; returns the seconds it took."""
        start = time.monotonic()
        seen = {}
        while time.monotonic() - start < timeout:
            ok = True
            for o in observers:
                try:
                    seen[o.node_id] = await self.states(o)
                except Exception as e:
                    seen[o.node_id] = repr(e)
                    ok = False
                    continue
                if any(seen[o.node_id].get(n) != s for n, s in want.items()):
                    ok = False
            if ok:
                return time.monotonic() - start
            await asyncio.sleep(0.05)
        self.fail(f"wanted {want} in /health of {[o.node_id for o in observers]} within "
                  f"{timeout}s; they show {seen}")

    async def channel_info(self, node, channel):
        r = await asyncio.to_thread(api_channel, node.port, channel)
        self.assertEqual(r.status, 200, f"GET /api/channel?channel={channel} on "
                                        f"{node.node_id}: {r}")
        for k in ("channel", "owner", "replicas", "epoch", "last_event_id"):
            self.assertIn(k, r.json, f"GET /api/channel answer on {node.node_id}: {r}")
        self.assertEqual(r.json["channel"], channel)
        self.assertIsInstance(r.json["replicas"], list, f"{r}")
        return r.json

    async def owner_of(self, cl, channel, observers=None, not_in=(), timeout=10.0):
        """Polls GET /api/channel on every observer until all name the same
        owner (not one of `not_in`); returns that answer of the first observer."""
        observers = observers or cl.usable()
        deadline = time.monotonic() + timeout
        answers = {}
        while True:
            # While the channel moves, a node may answer 503 (its request to
            # the old owner failed): the poll goes on.
            replies = {o.node_id: await asyncio.to_thread(api_channel, o.port, channel)
                       for o in observers}
            answers = {n: r.json if r.status == 200 else f"{r.status}" for n, r in replies.items()}
            owners = {a["owner"] if isinstance(a, dict) else None for a in answers.values()}
            if len(owners) == 1 and None not in owners and not owners & set(not_in):
                return await self.channel_info(observers[0], channel)
            if time.monotonic() > deadline:
                self.fail(f"{channel}: nodes {[o.node_id for o in observers]} do not agree on "
                          f"an owner (not in {list(not_in)}) within {timeout}s: {answers}")
            await asyncio.sleep(0.1)

    async def history_all(self, node, channel):
        """(epoch, every retained event) of `channel` from GET /api/history on
        `node`, paging with since."""
        events, since, epoch = [], 0, None
        for _ in range(100):
            r = await asyncio.to_thread(api_history, node.port, channel, since=since, limit=500)
            self.assertEqual(r.status, 200, f"GET /api/history on {node.node_id}: {r}")
            epoch = r.json.get("epoch")
            events += r.json["events"]
            if not r.json.get("has_more") or not r.json["events"]:
                break
            since = r.json["events"][-1]["event_id"]
        return epoch, events

    async def same_history(self, nodes, channel, at_least=0, timeout=10.0):
        """The history of `channel` from every node in `nodes`, once each has
        caught up to event `at_least`; asserts they are identical (epoch and
        every event) and returns (epoch, events)."""
        got = {}
        for node in nodes:
            deadline = time.monotonic() + timeout
            while True:
                epoch, events = await self.history_all(node, channel)
                if (events and events[-1].get("event_id", 0) >= at_least) or at_least == 0:
                    break
                if time.monotonic() > deadline:
                    self.fail(f"history of {channel} on {node.node_id} does not reach event "
                              f"{at_least} within {timeout}s: ids {ids_of(events)[-10:]}")
                await asyncio.sleep(0.1)
            got[node.node_id] = (epoch, events)
        first = nodes[0].node_id
        for n, (epoch, events) in got.items():
            self.assertEqual(epoch, got[first][0], f"history epoch on {n} vs {first}")
            self.assertEqual(ids_of(events), ids_of(got[first][1]),
                             f"history event ids on {n} vs {first}")
            self.assertEqual(events, got[first][1], f"history events on {n} vs {first}")
        return got[first]

    def check_acks(self, ledger, what):
        """No event id acknowledged for two different publishes, no
        idempotent resend acknowledged under two ids."""
        self.assertFalse(ledger.conflicts[:8], f"{what}: contradictory acknowledgements "
                                               f"({len(ledger.conflicts)} in all)")

    def check_log(self, events, ledger, what):
        """The channel's stored events: ids 1..N without holes, every
        acknowledged event at its acknowledged id, no published key twice."""
        ids = ids_of(events)
        self.assertEqual(ids, list(range(1, len(ids) + 1)),
                         f"{what}: event ids must be 1..N without holes or repeats: {ids}")
        self.check_acks(ledger, what)
        by_id = {e["event_id"]: e for e in events}
        missing = sorted(i for i in ledger.acked if i not in by_id)
        self.assertFalse(missing, f"{what}: acknowledged events missing: {missing}")
        wrong = [(i, k, key_of(by_id[i])) for i, k in sorted(ledger.acked.items())
                 if key_of(by_id[i]) != k]
        self.assertFalse(wrong, f"{what}: (event_id, acknowledged key, stored key) that differ")
        keys = [key_of(e) for e in events]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        self.assertFalse(dupes, f"{what}: published once but stored twice: {dupes}")

    def check_follower(self, f, events, epoch):
        """`f` got exactly `events` (the history), once each, in order, with
        live and replayed copies identical to the stored ones."""
        self.assertIsNone(f.crash, f.summary())
        self.assertEqual(ids_of(f.events), ids_of(events),
                         f"every event exactly once and in order: {f.summary()}")
        for got, want in zip(f.events, events):
            self.assertEqual(without_replayed(got), without_replayed(want),
                             f"{f.label}: the event as delivered differs from history")
        for e in f.epochs:
            self.assertEqual(e, epoch, f"{f.label}: epoch in connection_established "
                                       f"changed: {f.epochs}")
        for rc in f.completes:
            self.assertEqual((rc.get("epoch"), rc.get("gap")), (epoch, False),
                             f"{f.label}: replay_complete after a reconnect: {rc}")

    async def acked_history(self, nodes, channel, ledger, epoch, what):
        """The acknowledgements agree, every node in `nodes` serves the same
        history in `epoch`, and it holds every acknowledged event once;
        returns the events."""
        self.check_acks(ledger, what)
        h_epoch, events = await self.same_history(nodes, channel, ledger.last())
        self.assertEqual(h_epoch, epoch, f"{what}: the epoch")
        self.check_log(events, ledger, what)
        return events

    async def followers_got(self, fols, events, epoch, timeout):
        """Each follower got exactly `events` once they have all arrived."""
        for f in fols:
            await f.wait_last(events[-1]["event_id"], timeout)
        await asyncio.sleep(0.3)
        for f in fols:
            self.check_follower(f, events, epoch)

    async def followers(self, cl, room, homes, label="f"):
        out = []
        for i, home in enumerate(homes):
            f = Follower(room, unique_uid(), lambda h=home: cl.usable(prefer=h),
                         f"{label}{i}-{home}")
            await f.start()
            self.addAsyncCleanup(f.stop)
            out.append(f)
        return out

    async def wait_acks(self, ledger, n, timeout, after=None):
        """Waits until `n` events are acknowledged (after time `after`, if given)."""
        deadline = time.monotonic() + timeout
        count = lambda: len(ledger.acked) if after is None else ledger.count_after(after)
        while count() < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return count()

    async def run_publishers(self, pubs, stop):
        """Starts every publisher until `stop` is set; returns the tasks (see finish)."""
        tasks = [asyncio.create_task(p.publish(stop=stop)) for p in pubs]
        return tasks

    async def finish(self, tasks, stop, timeout=20.0):
        """Sets `stop` and waits for the publishers to finish their current event."""
        stop.set()
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for t in pending:
            t.cancel()
        for t in done:
            if t.exception() is not None:
                raise t.exception()
        self.assertFalse(pending, f"publishers still busy {timeout}s after being stopped")

    async def member(self, node, room, uid, query=None, label=None):
        return await self.connect_ok(f"/ws/chat/{room}/", chat_token(room, uid), server=node,
                                     query=query, label=label or f"{uid}@{node.node_id}")

    async def presence_map(self, node, channel):
        r = await asyncio.to_thread(api_presence, node.port, channel)
        self.assertEqual(r.status, 200, f"GET /api/presence on {node.node_id}: {r}")
        return {str(u.get("user_id")): u.get("connections") for u in r.json.get("users", [])}

    async def wait_presence(self, nodes, channel, want, timeout=5.0):
        """Polls GET /api/presence on each node until it lists exactly `want`
        ({user id: connections})."""
        want = {str(k): v for k, v in want.items()}
        deadline = time.monotonic() + timeout
        seen = {}
        while True:
            seen = {n.node_id: await self.presence_map(n, channel) for n in nodes}
            if all(v == want for v in seen.values()):
                return
            if time.monotonic() > deadline:
                self.fail(f"presence of {channel}: wanted {want} on every node within "
                          f"{timeout}s, got {seen}")
            await asyncio.sleep(0.1)


# --------------------------------------------------------------------------
# One cluster shared by the tests that harm no node
# --------------------------------------------------------------------------

class ClusterTest(ClusterBase):
    """Order, presence, typing, replay and the connection limit on one formed
    three-node cluster (limit of 2 connections per user)."""

    shared = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cl = Cluster(ClusterBase.pki, cls.__name__,
                     extra=["--limits.max_connections_per_user=2"])
        cls.shared = [cl]
        try:
            for n in NAMES:
                cl.start(n)
            cl.wait_all_up()
        except BaseException:
            cl.dump_logs(cls.__name__)
            cl.cleanup()
            raise
        cls.cl = cl

    @classmethod
    def tearDownClass(cls):
        for cl in cls.shared or []:
            cl.stop_all()
            cl.cleanup()
        cls.shared = None
        super().tearDownClass()

    async def test_publishes_on_every_node_reach_every_node_in_one_order(self):
        """Publishers on a, b and c at once (WebSocket `message` frames and
        POST /api/publish on each node) to one chat channel: every member on
        every node receives the same events with the same ids 1..N in the
        same order, identical to GET /api/history on each node, and every
        acknowledged id holds what was acknowledged. Nothing fails while no
        node fails."""
        cl = self.cl
        room = unique_room("order")
        ch = f"chat:{room}"
        ledger = Ledger()
        k = 12
        fols = await self.followers(cl, room, NAMES * 2, "recv")
        pubs = []
        for n in NAMES:
            pubs.append(WsPublisher(room, unique_uid(), lambda n=n: [cl[n]], f"ws{n}", ledger))
            pubs.append(ApiPublisher(ch, lambda n=n: [cl[n]], f"api{n}", ledger))
        done, pending = await asyncio.wait(
            [asyncio.create_task(p.publish(n=k, give_up=8)) for p in pubs], timeout=60)
        for t in done:
            t.result()
        self.assertFalse(pending, "publishers did not finish")
        failures = [(p.prefix, p.failures) for p in pubs if p.failures]
        self.assertFalse(failures, "no publish may fail while every node is up")
        total = k * len(pubs)
        self.check_acks(ledger, "publishing through every node")
        self.assertEqual(sorted(ledger.acked), list(range(1, total + 1)),
                         f"acknowledged ids of {total} publishes into a fresh channel")
        for f in fols:
            await f.wait_last(total, 10)
        await asyncio.sleep(0.3)  # anything extra (a duplicate) would show up now
        epoch, events = await self.same_history(list(cl.nodes.values()), ch, total)
        self.check_log(events, ledger, "history")
        for f in fols:
            self.check_follower(f, events, epoch)
            self.assertEqual(f.closes, [], f.summary())
        # Each publisher waited for one ack before its next publish: its events
        # are in its send order.
        for p in pubs:
            seq = [int(key[len(p.prefix) + 1:].split(".")[0])
                   for _, key in sorted(ledger.acked.items()) if key.startswith(p.prefix + "-")]
            self.assertEqual(seq, list(range(k)), f"{p.prefix}: its events in event_id order")

    async def test_presence_and_typing_are_cluster_wide(self):
        """user_joined is sent once per user (their first connection anywhere),
        a second connection of the same user on another node sends nothing,
        user_left comes once, only after the user's last connection on any
        node closes; nobody gets their own user_joined/user_left/typing, not
        even on their other node; typing on one node reaches the other users
        on the other nodes; the presence frame and GET /api/presence on every
        node list users from all nodes with their cluster-wide connection
        counts."""
        cl = self.cl
        a, b, c = cl["a"], cl["b"], cl["c"]
        room = unique_room("pres")
        ch = f"chat:{room}"
        u1, u2, u3 = unique_uid(), unique_uid(), unique_uid()
        by_user = lambda u: (lambda f: f.get("user_id") == u)

        c1 = await self.member(a, room, u1)
        c2b = await self.member(b, room, u2)
        j = await c1.recv("user_joined", pred=by_user(u2), timeout=5)
        self.assertEqual((j.get("channel"), j.get("username")), (ch, f"U{u2}"), f"{j}")
        self.assertSameId(j.get("user_id"), u2)
        self.assertNotIn("event_id", j)
        c3 = await self.member(c, room, u3)
        for cc in (c1, c2b):
            j = await cc.recv("user_joined", pred=by_user(u3), timeout=5)
            self.assertEqual(j.get("username"), f"U{u3}")
        # u2's second connection, on another node: no second user_joined.
        c2c = await self.member(c, room, u2, label=f"{u2}@c-second")
        await self.wait_presence([a, b, c], ch, {u1: 1, u2: 2, u3: 1})
        await c1.expect_none("user_joined", 0.8, pred=by_user(u2))
        await c3.expect_none("user_joined", 0.2, pred=by_user(u2))  # u2 was there before u3
        for u, conns in ((u1, (c1,)), (u2, (c2b, c2c)), (u3, (c3,))):
            for cc in conns:
                await cc.expect_none(("user_joined", "user_left"), 0.2, pred=by_user(u))
        await c3.send({"type": "presence", "id": "p"})
        p = await c3.recv("presence", timeout=5)
        users = {str(x.get("user_id")): x for x in p.get("users", [])}
        self.assertEqual(set(users), {str(u1), str(u2), str(u3)},
                         f"presence frame on c lists the users of every node: {p}")
        self.assertEqual(users[str(u2)].get("connections"), 2, f"{p}")
        self.assertEqual(users[str(u1)].get("username"), f"U{u1}")

        # typing from a reaches both of u2's connections (b, c) and u3 (c); not u1.
        await c1.send({"type": "typing", "is_typing": True, "id": "t1"})
        await c1.recv("ack", pred=lambda f: f.get("id") == "t1", timeout=5)
        for cc in (c2b, c2c, c3):
            t = await cc.recv("typing", pred=by_user(u1), timeout=5)
            self.assertEqual((t.get("channel"), t.get("username"), t.get("is_typing")),
                             (ch, f"U{u1}", True), f"{cc.label}: {t}")
        # typing from u2 on b reaches a and c, not u2's own connection on c.
        await c2b.send({"type": "typing", "is_typing": True, "id": "t2"})
        await c2b.recv("ack", pred=lambda f: f.get("id") == "t2", timeout=5)
        for cc in (c1, c3):
            t = await cc.recv("typing", pred=by_user(u2), timeout=5)
            self.assertIs(t.get("is_typing"), True)
        await c2c.expect_none("typing", 0.8, pred=by_user(u2))
        await c1.expect_none("typing", 0.2, pred=by_user(u1))
        await c2b.expect_none("typing", 0.2, pred=by_user(u2))

        # u2 closes the connection on b: still present through c, no user_left.
        await c2b.close()
        await self.wait_presence([a, b, c], ch, {u1: 1, u2: 1, u3: 1})
        await c1.expect_none("user_left", 0.8, pred=by_user(u2))
        await c3.expect_none("user_left", 0.2, pred=by_user(u2))
        # ... and the last one on c: user_left once, on both remaining users.
        await c2c.close()
        for cc in (c1, c3):
            left = await cc.recv("user_left", pred=by_user(u2), timeout=5)
            self.assertEqual((left.get("channel"), left.get("username")), (ch, f"U{u2}"))
            self.assertSameId(left.get("user_id"), u2)
        await self.wait_presence([a, b, c], ch, {u1: 1, u3: 1})
        await c1.expect_none("user_left", 0.8, pred=by_user(u2))
        await c3.expect_none("user_left", 0.2, pred=by_user(u2))
        for u, cc in ((u1, c1), (u3, c3)):
            await cc.expect_none(("user_joined", "user_left", "typing"), 0.2, pred=by_user(u))

    async def test_replay_and_history_from_another_node(self):
        """A client that saw events 1..5 on node a resumes on node b with
        ?last_event_id=5 and gets 6..N once, in order, flagged replayed and
        identical to the live frames, then replay_complete (same epoch, no
        gap), then live events. replay_request on c and subscribe with since
        on /ws/ on a do the same; connection_established, GET /api/history
        (whole and paged) and GET /api/channel agree on every node."""
        cl = self.cl
        a, b, c = cl["a"], cl["b"], cl["c"]
        room = unique_room("replay")
        ch = f"chat:{room}"
        ux, uy = unique_uid(), unique_uid()
        x = await self.member(a, room, ux)
        epoch = x.established["channels"][0]["epoch"]
        y = await self.member(c, room, uy)  # stays connected: sees every event live
        self.assertEqual(y.established["channels"][0]["epoch"], epoch,
                         "one epoch for the channel on every node")

        async def api(node, n, tag):
            for i in range(n):
                r = await asyncio.to_thread(harness.api_publish, node.port, ch, APP_TYPE,
                                            {"text": f"{tag}{i}"})
                self.assertEqual(r.status, 200, f"publish through {node.node_id}: {r}")

        async def say(client, n, tag):
            for i in range(n):
                await client.send({"type": "message", "message": f"{tag}{i}", "id": f"{tag}{i}"})
                ack = await client.recv("ack", pred=lambda f, i=i: f.get("id") == f"{tag}{i}",
                                        timeout=5)
                self.assertIn("event_id", ack)

        await api(b, 3, "api-b-")
        await say(y, 2, "y-")
        seen = [f for f in await x.recv_n(5, pred=lambda f: "event_id" in f and
                                          f.get("type") != "ack", timeout=5)]
        self.assertEqual(ids_of(seen), [1, 2, 3, 4, 5], "x on a sees 1..5 live")
        await x.close()
        await api(a, 2, "api-a-")
        await say(y, 2, "y2-")
        live = {f["event_id"]: f for f in await y.recv_n(
            9, pred=lambda f: "event_id" in f and f.get("type") != "ack", timeout=5)}
        self.assertEqual(sorted(live), list(range(1, 10)))

        # x resumes on b.
        x2 = await self.member(b, room, ux, query="last_event_id=5", label=f"{ux}@b-resumed")
        est = x2.established["channels"][0]
        self.assertEqual((est.get("epoch"), est.get("last_event_id")), (epoch, 9),
                         f"connection_established on b: {x2.established}")
        replayed, rc = await self.read_replay(x2, ch)
        self.assertEqual(ids_of(replayed), [6, 7, 8, 9], "events after 5, once, in order")
        for f in replayed:
            self.assertIs(f.get("replayed"), True, f"{f}")
            self.assertEqual(without_replayed(f), live[f["event_id"]],
                             "a replayed event on b is identical to the live one on c")
        self.assertEqual((rc.get("epoch"), rc.get("last_event_id"), rc.get("gap")),
                         (epoch, 9, False), f"{rc}")
        await say(y, 1, "y3-")
        m = await x2.recv("message", pred=lambda f: f.get("event_id") == 10, timeout=5)
        self.assertNotIn("replayed", m)
        await x2.expect_none(pred=lambda f: "event_id" in f and f.get("event_id", 0) <= 9
                             and f.get("type") != "ack", duration=0.5)

        # replay_request on c.
        z = await self.member(c, room, unique_uid())
        self.assertEqual(z.established["channels"][0]["last_event_id"], 10)
        await z.send({"type": "replay_request", "last_event_id": 2, "id": "rr"})
        replayed, rc = await self.read_replay(z, ch)
        self.assertEqual(ids_of(replayed), list(range(3, 11)))
        self.assertEqual((rc.get("id"), rc.get("last_event_id"), rc.get("gap")),
                         ("rr", 10, False), f"{rc}")

        # subscribe with since on /ws/ on a.
        mux = await self.connect_ok("/ws/", token(unique_uid(), channels=[ch]), server=a)
        await mux.send({"type": "subscribe", "channel": ch, "since": 7, "id": "s"})
        sub = await mux.recv("subscribed", timeout=5)
        self.assertEqual((sub.get("epoch"), sub.get("last_event_id")), (epoch, 10), f"{sub}")
        replayed, rc = await self.read_replay(mux, ch)
        self.assertEqual(ids_of(replayed), [8, 9, 10])
        self.assertEqual((rc.get("epoch"), rc.get("gap")), (epoch, False))

        # History and channel info: one answer from every node.
        h_epoch, events = await self.same_history([a, b, c], ch, 10)
        self.assertEqual(h_epoch, epoch)
        self.assertEqual(ids_of(events), list(range(1, 11)))
        for e in events:
            if e["event_id"] in live:
                self.assertEqual(e, live[e["event_id"]], "history event == the live frame")
        paged = []
        for node in (a, b, c):
            r = await asyncio.to_thread(api_history, node.port, ch, since=4, limit=3)
            self.assertEqual(r.status, 200, f"{r}")
            paged.append((ids_of(r.json["events"]), r.json.get("has_more")))
        self.assertEqual(paged, [([5, 6, 7], True)] * 3, "history?since=4&limit=3 per node")
        infos = [await self.channel_info(n, ch) for n in (a, b, c)]
        self.assertEqual({(i["owner"], i["epoch"], i["last_event_id"]) for i in infos},
                         {(infos[0]["owner"], epoch, 10)},
                         f"GET /api/channel must agree on every node: {infos}")
        self.assertIn(infos[0]["owner"], NAMES)

    async def read_replay(self, client, channel, timeout=5.0):
        events = []
        deadline = time.monotonic() + timeout
        while True:
            f = await client.recv(
                pred=lambda x: x.get("channel") == channel and x.get("type") != "ack" and (
                    x.get("type") == "replay_complete" or "event_id" in x),
                timeout=max(0.05, deadline - time.monotonic()))
            if f["type"] == "replay_complete":
                return events, f
            events.append(f)

    async def test_connection_limit_counts_every_node(self):
        """With limits.max_connections_per_user=2 on every node, a user with one
        connection on a and one on b is refused a third on c (and a fourth on
        a) with 4008; after one of them closes, a connection on c is accepted
        again, and the count stays cluster-wide (another on b is refused)."""
        cl = self.cl
        a, b, c = cl["a"], cl["b"], cl["c"]
        room = unique_room("lim")
        uid = unique_uid()
        tok = token(uid, channels=[f"chat:{room}"])
        first = await self.connect_ok(f"/ws/chat/{room}/", tok, server=a, label="lim-1@a")
        await self.connect_ok("/ws/", tok, server=b, label="lim-2@b")
        await asyncio.sleep(0.5)  # let the nodes count them
        await self.expect_refused(f"/ws/chat/{room}/", tok, 4008, server=c)
        await self.expect_refused("/ws/", tok, 4008, server=a)
        # Other users are not affected.
        await self.connect_ok(f"/ws/chat/{room}/", token(unique_uid(), channels=[f"chat:{room}"]),
                              server=c)
        await first.close()
        deadline = time.monotonic() + 5
        while True:
            cc = await self.connect(f"/ws/chat/{room}/", tok, server=c, label="lim-3@c")
            try:
                f = await cc._recv_one(5)
            except Closed as e:
                f = {"closed": e.code}
            except asyncio.TimeoutError:
                f = {"nothing within": 5}
            if f.get("type") == "connection_established":
                break
            self.assertLess(time.monotonic(), deadline,
                            f"after closing the connection on a, c must accept one again "
                            f"within 5s; got {f}")
            await asyncio.sleep(0.3)
        await asyncio.sleep(0.5)
        await self.expect_refused(f"/ws/chat/{room}/", tok, 4008, server=b)


# --------------------------------------------------------------------------
# Failures: one cluster per test
# --------------------------------------------------------------------------

class ClusterFailureTest(ClusterBase):
    """Each test starts its own three-node cluster and kills, stops, restarts
    or drains a node of it."""

    async def setup_channel(self, cl, room, ledger, n=3):
        """Publishes n events into chat:{room} (so that it exists) and returns
        the GET /api/channel answer that every node agrees on."""
        ch = f"chat:{room}"
        p = ApiPublisher(ch, lambda: cl.usable(), "setup", ledger)
        await p.publish(n=n, give_up=5)
        self.assertFalse(p.failures, "publishing into a healthy cluster must not fail")
        info = await self.owner_of(cl, ch)
        self.assertIn(info["owner"], cl.names)
        self.assertEqual(info["last_event_id"], n, f"{info}")
        return info

    async def test_owner_killed_during_publishing_loses_no_acknowledged_event(self):
        """replication 2, three nodes. Publishers on every node (WebSocket with
        ids, and the server API) keep publishing while the channel's owner is
        killed with kill -9. Within dead_after the surviving nodes take over
        with the same epoch and go on with the ids; every acknowledged event,
        before and after the kill, is in history (same on both survivors) at
        its acknowledged id, no id is used twice, nothing is stored twice, and
        every follower (those on the killed node reconnect to a survivor with
        ?last_event_id) gets every event exactly once, in order."""
        cl = self.cluster(extra=["--cluster.replication=2"])
        room = unique_room("kill")
        ch = f"chat:{room}"
        ledger = Ledger()
        info = await self.setup_channel(cl, room, ledger)
        owner, epoch = info["owner"], info["epoch"]
        copies = set(info["replicas"]) - {owner}
        self.assertTrue(copies and copies <= set(cl.names),
                        f"replication 2: at least one node besides the owner holds the "
                        f"channel: {info}")
        survivors = [n for n in cl.names if n != owner]

        fols = await self.followers(cl, room, list(cl.names) * 2)
        pubs = [WsPublisher(room, unique_uid(), lambda n=n: cl.usable(prefer=n), f"ws{n}", ledger)
                for n in cl.names]
        pubs += [ApiPublisher(ch, lambda n=n: cl.usable(prefer=n), f"api{n}", ledger)
                 for n in cl.names]
        stop = asyncio.Event()
        tasks = await self.run_publishers(pubs, stop)
        got = await self.wait_acks(ledger, 25, 15)
        self.assertGreaterEqual(got, 25, "publishing before the kill")

        cl.down.add(owner)
        t_kill = time.monotonic()
        await asyncio.to_thread(cl[owner].sigkill)
        got = await self.wait_acks(ledger, 10, DEAD_AFTER + 10, after=t_kill + 0.5)
        self.assertGreaterEqual(got, 10, f"publishing through the survivors must work again "
                                         f"within about dead_after ({DEAD_AFTER}s) of the kill")
        first_after = min(t for t in ledger.times.values() if t > t_kill + 0.5) - t_kill
        self.assertLess(first_after, DEAD_AFTER + 5,
                        "failover took too long after a kill -9")
        await asyncio.sleep(1.0)
        await self.finish(tasks, stop)

        nodes = [cl[n] for n in survivors]
        after = await self.owner_of(cl, ch, observers=nodes, not_in={owner})
        self.assertEqual(after["epoch"], epoch, "failover keeps the epoch")
        events = await self.acked_history(nodes, ch, ledger, epoch, "across the kill")
        self.assertEqual(after["last_event_id"], events[-1]["event_id"], f"{after}")
        await self.followers_got(fols, events, epoch, 15)

    async def test_hung_owner_is_replaced_and_rejoins_without_forking(self):
        """SIGSTOP of the channel's owner: the two others show it down in
        /health within about dead_after+1s, agree on a new owner (same epoch),
        and publishing through them works again with the next ids. After
        SIGCONT the node is up again everywhere; publishes through it are
        accepted and take later ids (it must not go on with its old idea of
        the channel), and every node answers the same history."""
        cl = self.cluster()
        room = unique_room("hang")
        ch = f"chat:{room}"
        ledger = Ledger()
        info = await self.setup_channel(cl, room, ledger)
        owner, epoch = info["owner"], info["epoch"]
        survivors = [cl[n] for n in cl.names if n != owner]
        fols = await self.followers(cl, room, [s.node_id for s in survivors])

        cl.down.add(owner)
        cl[owner].proc.send_signal(signal.SIGSTOP)
        took = await self.wait_states(survivors, {owner: "down"}, DEAD_AFTER + 6)
        self.assertLess(took, DEAD_AFTER + 3, "a hung node is noticed within about dead_after")
        after = await self.owner_of(cl, ch, observers=survivors, not_in={owner}, timeout=5)
        self.assertEqual(after["epoch"], epoch)
        api = ApiPublisher(ch, lambda: cl.usable(prefer=survivors[0].node_id), "api", ledger)
        r = await api.one("after-stop", give_up=8)
        self.assertIsNotNone(r, f"publishing after the hung owner was detected: {api.failures}")
        ws = WsPublisher(room, unique_uid(), lambda: [survivors[1]], "ws", ledger)
        await ws.publish(n=2, give_up=8)
        self.assertFalse(ws.unacked, f"{ws.failures}")
        self.assertFalse(api.failures + ws.failures,
                         "once the hung owner is detected and replaced, publishing through "
                         "the others works at the first attempt")
        self.check_acks(ledger, "publishing through the survivors")
        self.assertEqual(sorted(ledger.acked), [1, 2, 3, 4, 5, 6], "ids go on after 3")

        cl[owner].proc.send_signal(signal.SIGCONT)
        cl.down.discard(owner)
        back = cl[owner]
        # Right away, through the resumed node: accepted (maybe after retries), never forked.
        api2 = ApiPublisher(ch, lambda: [back], "resumed", ledger)
        r = await api2.one("resumed", give_up=15)
        self.assertIsNotNone(r, f"publishing through the resumed node: {api2.failures}")
        await self.wait_states(survivors + [back], {n: "up" for n in cl.names}, 15)
        await api.publish(n=3, give_up=8)
        self.assertFalse(api.unacked)
        every = list(cl.nodes.values())
        events = await self.acked_history(every, ch, ledger, epoch, "across SIGSTOP/SIGCONT")
        infos = [await self.channel_info(n, ch) for n in every]
        self.assertEqual(len({(i["owner"], i["epoch"], i["last_event_id"]) for i in infos}), 1,
                         f"GET /api/channel on every node: {infos}")
        await self.followers_got(fols, events, epoch, 10)
        # A client on the resumed node replays the same.
        c = await self.member(back, room, unique_uid(), query="last_event_id=0")
        got = await c.recv_n(len(events), pred=lambda f: "event_id" in f, timeout=10)
        self.assertEqual([without_replayed(f) for f in got], events)

    async def test_restarted_owner_rejoins_and_ids_continue(self):
        """The channel's owner is killed, the others go on publishing, then it
        is started again on the same data dir: it rejoins (up in every
        /health), publishes through it get ids after every id handed out
        while it was away (none reused), and history, GET /api/channel and a
        full replay are the same from every node, epoch unchanged."""
        cl = self.cluster()
        room = unique_room("restart")
        ch = f"chat:{room}"
        ledger = Ledger()
        info = await self.setup_channel(cl, room, ledger, n=4)
        owner, epoch = info["owner"], info["epoch"]
        others = [n for n in cl.names if n != owner]

        cl.down.add(owner)
        await asyncio.to_thread(cl[owner].sigkill)
        await self.owner_of(cl, ch, observers=[cl[n] for n in others], not_in={owner})
        away = ApiPublisher(ch, lambda: cl.usable(), "away", ledger)
        await away.publish(n=4, give_up=10)
        self.assertFalse(away.unacked, f"{away.failures}")
        ws = WsPublisher(room, unique_uid(), lambda: cl.usable(prefer=others[1]), "wsaway",
                         ledger)
        await ws.publish(n=2, give_up=10)
        self.assertFalse(ws.unacked, f"{ws.failures}")
        before = ledger.last()

        back = await asyncio.to_thread(cl.restart, owner)
        await self.wait_states(list(cl.nodes.values()), {n: "up" for n in cl.names}, 15)
        again = ApiPublisher(ch, lambda: [back], "back", ledger)
        await again.publish(n=3, give_up=10)
        self.assertFalse(again.unacked, f"publishing through the restarted node: "
                                        f"{again.failures}")
        back_ids = [i for i, k in ledger.acked.items() if k.startswith("back-")]
        self.assertTrue(all(i > before for i in back_ids),
                        f"ids after the restart {back_ids} must follow {before}")
        ws2 = WsPublisher(room, unique_uid(), lambda: [back], "wsback", ledger)
        await ws2.publish(n=2, give_up=10)
        self.assertFalse(ws2.unacked, f"{ws2.failures}")

        every = list(cl.nodes.values())
        events = await self.acked_history(every, ch, ledger, epoch, "across the restart")
        if not (away.failures or ws.failures or again.failures or ws2.failures):
            self.assertEqual(len(events), 4 + 4 + 2 + 3 + 2, "every publish stored once")
        infos = [await self.channel_info(n, ch) for n in every]
        self.assertEqual({(i["owner"], i["epoch"], i["last_event_id"]) for i in infos},
                         {(infos[0]["owner"], epoch, len(events))},
                         f"GET /api/channel on every node: {infos}")
        c = await self.member(back, room, unique_uid(), query="last_event_id=0")
        got = await c.recv_n(len(events), pred=lambda f: "event_id" in f, timeout=10)
        self.assertEqual([without_replayed(f) for f in got], events,
                         "full replay on the restarted node")

    async def test_dead_owners_unacknowledged_write_never_returns(self):
        """The owner writes an event to its own disk that no replica took (both
        other nodes are down, so it is never acknowledged), then dies. The other
        two come back without it and acknowledge a different event under the
        same id. When the old owner returns (and owns the channel again) that
        acknowledged event is what every node serves, not the old owner's
        unacknowledged one: the newer leadership term wins."""
        cl = self.cluster()
        room = unique_room("term")
        ch = f"chat:{room}"
        ledger = Ledger()
        info = await self.setup_channel(cl, room, ledger, n=1)
        owner = info["owner"]
        others = [n for n in cl.names if n != owner]

        for n in others:
            cl.down.add(n)
            await asyncio.to_thread(cl[n].sigkill)
        # Durable on the owner's disk, never on a replica: an error or no answer.
        try:
            r = await asyncio.to_thread(http_request, cl[owner].port, "POST", "/api/publish",
                                        {"channel": ch, "type": APP_TYPE, "data": {"text": "lost"}},
                                        timeout=2.0)
            self.assertNotEqual(r.status, 200, f"with both replicas down nothing is acked: {r}")
        except TimeoutError:
            pass
        cl.down.add(owner)
        await asyncio.to_thread(cl[owner].sigkill)

        for n in others:
            await asyncio.to_thread(cl.restart, n)
        survivors = [cl[n] for n in others]
        await self.wait_states(survivors, {others[0]: "up", others[1]: "up"}, 15)
        kept = ApiPublisher(ch, lambda: survivors, "kept", ledger)
        await kept.publish(n=1, give_up=15)
        self.assertFalse(kept.unacked, f"{kept.failures}")
        self.assertEqual(ledger.last(), 2, f"the survivors go on after event 1: {ledger.acked}")

        await asyncio.to_thread(cl.restart, owner)
        every = list(cl.nodes.values())
        await self.wait_states(every, {n: "up" for n in cl.names}, 15)
        back = await self.owner_of(cl, ch, observers=every)
        self.assertEqual(back["owner"], owner, "the old owner owns the channel again")
        after = ApiPublisher(ch, lambda: [cl[owner]], "after", ledger)
        await after.publish(n=1, give_up=15)
        self.assertFalse(after.unacked, f"{after.failures}")
        self.check_acks(ledger, "publishing around the old owner's death")
        _, events = await self.same_history(every, ch, 3)
        self.check_log(events, ledger, "history once the old owner is back")
        self.assertNotIn("lost", json.dumps(events), "the unacknowledged event is gone")

    async def test_api_retry_with_same_key_after_owner_killed_is_stored_once(self):
        """A backend publishes with an Idempotency-Key through a node that is
        not the owner, the owner is killed (kill -9) and the backend retries
        with the same key through another node until it gets a 200: the answer
        is the first one (same event_id) and the event is stored once. After
        the old owner restarts and takes the channel back, a retry through it
        still gets the first answer."""
        cl = self.cluster()
        room = unique_room("idem")
        ch = f"chat:{room}"
        info = await self.setup_channel(cl, room, Ledger(), n=2)
        owner = info["owner"]
        others = [n for n in cl.names if n != owner]
        key = {"Idempotency-Key": "order-1234"}

        async def publish(node, headers=key, text="once"):
            body = {"channel": ch, "type": APP_TYPE, "data": {"text": text}}
            return await asyncio.to_thread(http_request, node.port, "POST", "/api/publish",
                                           body, headers=headers, timeout=3.0)

        first = await publish(cl[others[0]])
        self.assertEqual((first.status, first.json.get("event_id")), (200, 3), f"{first}")
        cl.down.add(owner)
        await asyncio.to_thread(cl[owner].sigkill)
        deadline = time.monotonic() + DEAD_AFTER + 10
        retry = None
        while time.monotonic() < deadline:
            try:
                retry = await publish(cl[others[1]])
            except OSError as e:  # a timeout while the channel moves
                retry = e
            if getattr(retry, "status", None) == 200:
                break
            await asyncio.sleep(0.2)
        self.assertEqual((retry.status, retry.json), (200, first.json),
                         "a retry through another node after the owner died gets the first answer")
        fresh = await publish(cl[others[1]], headers=None, text="fresh")
        self.assertEqual(fresh.json.get("event_id"), 4, f"nothing was stored twice: {fresh}")

        back = await asyncio.to_thread(cl.restart, owner)
        every = list(cl.nodes.values())
        await self.wait_states(every, {n: "up" for n in cl.names}, 15)
        await self.owner_of(cl, ch, observers=every)
        again = await publish(back)
        self.assertEqual((again.status, again.json), (200, first.json),
                         "a retry through the restarted old owner gets the first answer")
        _, events = await self.same_history(every, ch, 4)
        self.assertEqual([key_of(e) for e in events].count("once"), 1, f"{events}")
        self.assertEqual(ids_of(events), [1, 2, 3, 4])

    async def test_drain_hands_over_closes_with_1001_and_exits_0(self):
        """SIGTERM to the channel's owner while publishers run: it hands the
        channel to another node (GET /api/channel on the others names a new
        owner, same epoch, by the time its clients are closed), closes its
        WebSocket clients with 1001 and exits 0. Its clients reconnect to the
        other nodes with their positions and, like the clients that stayed,
        get every event exactly once, in order; every acknowledged event is
        there."""
        cl = self.cluster()
        room = unique_room("drain")
        ch = f"chat:{room}"
        ledger = Ledger()
        info = await self.setup_channel(cl, room, ledger)
        owner, epoch = info["owner"], info["epoch"]
        others = [cl[n] for n in cl.names if n != owner]
        fols = await self.followers(cl, room, [owner, owner] + [o.node_id for o in others])
        pubs = [WsPublisher(room, unique_uid(), lambda n=n: cl.usable(prefer=n), f"ws{n}", ledger)
                for n in cl.names]
        pubs += [ApiPublisher(ch, lambda n=n: cl.usable(prefer=n), f"api{n}", ledger)
                 for n in (o.node_id for o in others)]
        stop = asyncio.Event()
        tasks = await self.run_publishers(pubs, stop)
        self.assertGreaterEqual(await self.wait_acks(ledger, 15, 15), 15)

        draining = cl[owner]
        cl.down.add(owner)
        t0 = time.monotonic()
        draining.proc.send_signal(signal.SIGTERM)
        on_owner = fols[:2]
        deadline = t0 + 20
        while (any(not f.closes for f in on_owner) and time.monotonic() < deadline):
            await asyncio.sleep(0.02)
        for f in on_owner:
            self.assertTrue(f.closes, f"a client of the draining node must be closed: "
                                      f"{f.summary()}")
            self.assertEqual(f.closes[0], (owner, 1001), f.summary())
        # Handed over before the clients were told to go.
        moved = await self.owner_of(cl, ch, observers=others, not_in={owner}, timeout=1.0)
        self.assertEqual(moved["epoch"], epoch)
        rc = await asyncio.to_thread(draining.wait_exit, max(1, deadline - time.monotonic()))
        self.assertEqual(rc, 0, f"exit code after SIGTERM (took {time.monotonic() - t0:.1f}s)")
        await asyncio.sleep(1.0)
        await self.finish(tasks, stop)

        events = await self.acked_history(others, ch, ledger, epoch, "across the drain")
        await self.followers_got(fols, events, epoch, 10)
        for f in on_owner:
            self.assertNotIn(owner, f.nodes[1:], f"reconnected elsewhere: {f.summary()}")

    async def test_rolling_restart_under_load_loses_nothing(self):
        """Every node in turn is drained (SIGTERM, exit 0) and started again on
        its data dir while WebSocket and API publishers run on all nodes and
        readers follow the channel from every node. The channel keeps one
        epoch, every acknowledged event is in the history exactly once with
        ids 1..N, and every reader (reconnecting as its node goes) gets every
        event exactly once, in order."""
        cl = self.cluster()
        room = unique_room("rolling")
        ch = f"chat:{room}"
        ledger = Ledger()
        info = await self.setup_channel(cl, room, ledger)
        epoch = info["epoch"]
        fols = await self.followers(cl, room, list(cl.names))
        pubs = [WsPublisher(room, unique_uid(), lambda n=n: cl.usable(prefer=n), f"ws{n}", ledger)
                for n in cl.names]
        pubs += [ApiPublisher(ch, lambda n=n: cl.usable(prefer=n), f"api{n}", ledger)
                 for n in cl.names]
        stop = asyncio.Event()
        tasks = await self.run_publishers(pubs, stop)
        self.assertGreaterEqual(await self.wait_acks(ledger, 10, 15), 10)
        for name in cl.names:
            node = cl[name]
            cl.down.add(name)
            node.proc.send_signal(signal.SIGTERM)
            rc = await asyncio.to_thread(node.wait_exit, 20)
            self.assertEqual(rc, 0, f"{name} drains and exits 0")
            await asyncio.to_thread(cl.restart, name)
            await self.wait_states(list(cl.nodes.values()), {n: "up" for n in cl.names}, 15)
            before = len(ledger.acked)
            self.assertGreater(await self.wait_acks(ledger, before + 5, 15), before,
                               f"publishing goes on after restarting {name}")
        await self.finish(tasks, stop)

        events = await self.acked_history(list(cl.nodes.values()), ch, ledger, epoch,
                                          "across the rolling restart")
        await self.followers_got(fols, events, epoch, 15)

    async def test_users_of_a_dead_node_leave(self):
        """kill -9 of node c: users whose only connection was on c get user_left
        (once) on the other nodes within about dead_after, and leave presence;
        a user who also has a connection on b stays present with one
        connection and gets no user_left."""
        cl = self.cluster()
        a, b, c = cl["a"], cl["b"], cl["c"]
        room = unique_room("dead")
        ch = f"chat:{room}"
        u1, u2, u3 = unique_uid(), unique_uid(), unique_uid()
        c1 = await self.member(a, room, u1)
        c2b = await self.member(b, room, u2)
        await self.member(c, room, u2, label=f"{u2}@c")
        await self.member(c, room, u3)
        await self.wait_presence([a, b, c], ch, {u1: 1, u2: 2, u3: 1})
        for u in (u2, u3):
            await c1.recv("user_joined", pred=lambda f, u=u: f.get("user_id") == u, timeout=5)
        await c2b.recv("user_joined", pred=lambda f: f.get("user_id") == u3, timeout=5)
        await c1.collect(0.3)
        c1.take()
        c2b.take()

        cl.down.add("c")
        t0 = time.monotonic()
        await asyncio.to_thread(c.sigkill)
        for cc in (c1, c2b):
            left = await cc.recv("user_left", pred=lambda f: f.get("user_id") == u3,
                                 timeout=DEAD_AFTER + 5)
            self.assertEqual(left.get("channel"), ch)
        self.assertLess(time.monotonic() - t0, DEAD_AFTER + 3,
                        "a dead node's users leave within about dead_after")
        await self.wait_presence([a, b], ch, {u1: 1, u2: 1}, timeout=3)
        await c1.expect_none(("user_left", "user_joined"), 1.0)
        await c2b.expect_none(("user_left", "user_joined"), 0.2)


if __name__ == "__main__":
    harness.main()
