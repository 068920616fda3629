#!/usr/bin/python3
"""Failover time of a channel: three nodes (mutual TLS, replication 2), a
backend publishing through the server API of a node that does not own the
channel, one request after the other; then the owner is killed (kill -9) or
hung (SIGSTOP). Prints the longest wait between two acknowledged publishes
around the failure (a request in flight to the dead owner fails at the
client's 2 s timeout and is sent again), and checks that every
acknowledged event is in the history exactly once.

    tests/bench/failover.py build/switchboard [kill|stop] [dead_after]
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY = "dev-api-key"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None, timeout=10):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def main():
    binary = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else "kill"
    dead_after = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    work = tempfile.mkdtemp(prefix="sb-failover-")
    names = ["a", "b", "c"]
    subprocess.run([os.path.join(ROOT, "configs/cluster/make-certs.sh"), f"{work}/pki", *names],
                   check=True, capture_output=True)
    http = {n: free_port() for n in names}
    cport = {n: free_port() for n in names}
    seeds = json.dumps([f"127.0.0.1:{cport[n]}" for n in names])
    procs = {}
    for n in names:
        os.makedirs(f"{work}/{n}")
        procs[n] = subprocess.Popen(
            [binary, "--config", os.path.join(ROOT, "configs/dev.json"), f"--node.id={n}",
             f"--node.data_dir={work}/{n}", f"--http.port={http[n]}", f"--cluster.port={cport[n]}",
             f"--cluster.seeds={seeds}", f"--cluster.certificate={work}/pki/{n}.pem",
             f"--cluster.key={work}/pki/{n}.key", f"--cluster.ca_file={work}/pki/ca.pem",
             f"--cluster.dead_after={dead_after}", "--admin.port=0", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(f"{work}/{n}.log", "w"))
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                h = call(http["a"], "GET", "/health")
                if sum(m["state"] == "up" for m in h["cluster"]["members"]) == 3:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        channel = f"chat:failover-{os.getpid()}"
        owner = call(http["a"], "GET", f"/api/channel?channel={channel}")["owner"]
        via = next(n for n in names if n != owner)
        acked, failures, ack_times = [], 0, []
        victim_at = None
        t_end = time.time() + 6 + dead_after
        i = 0
        while time.time() < t_end:
            i += 1
            if victim_at is None and i == 200:
                victim_at = time.monotonic()
                if mode == "kill":
                    procs[owner].kill()
                else:
                    procs[owner].send_signal(signal.SIGSTOP)
            try:
                r = call(http[via], "POST", "/api/publish",
                         {"channel": channel, "type": "tick", "data": {"i": i}}, timeout=2)
                acked.append((r["event_id"], i))
                ack_times.append(time.monotonic())
            except (urllib.error.URLError, OSError, KeyError):
                failures += 1
        hist = call(http[via], "GET", f"/api/history?channel={channel}&limit=500&since=0")
        stored = {e["event_id"]: e["data"]["i"] for e in hist["events"]}
        while hist["has_more"]:
            hist = call(http[via], "GET", f"/api/history?channel={channel}&limit=500"
                        f"&since={max(stored)}")
            stored.update({e["event_id"]: e["data"]["i"] for e in hist["events"]})
        wrong = [(eid, i) for eid, i in acked if stored.get(eid) != i]
        # The outage: the longest wait between two acknowledgements around the failure.
        around = [t for t in ack_times if t >= victim_at - 1]
        outage = max((b - a for a, b in zip(around, around[1:])), default=0.0)
        print(json.dumps({"mode": mode, "dead_after_s": dead_after, "owner": owner, "via": via,
                          "acknowledged": len(acked), "failed_requests": failures,
                          "longest_wait_between_acks_s": round(outage, 3),
                          "acknowledged_missing_or_changed": len(wrong)}))
        return 1 if wrong else 0
    finally:
        for p in procs.values():
            try:
                p.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
            p.kill()


if __name__ == "__main__":
    sys.exit(main())
