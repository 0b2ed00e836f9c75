#!/usr/bin/env python3
"""The list and the live updates at scale (scripts/bench list).

A private redis-server on a free loopback port and one bridge (COMMAND, run with REDIS_URL and
HTTP_PORT set). First --tasks tasks are created on the stream (`create` entries, pipelined; a
fifth running, the rest completed with every status, created over 90 days), and the script waits
until every reply is stored. Then:

- list: each query --queries times, one after the other over one keep-alive connection, p50 and
  p99 of the answer's latency (whole body read): running tasks newest first (limit 250), the same
  with count=true, and `id in (...)` of 50 random ids; every answer checked (status, count,
  order, filter). The index's memory per task: MEMORY USAGE of every index set over the tasks.
- watch: --clients clients stream `GET /v2026/task-status` with `Accept: text/event-stream`, then
  --updates updates are sent on the stream at --rate per second (open loop), each with a reply
  channel. For each update, the time from its reply on Pub/Sub to its event at each client; p50,
  p99, how many events arrived (every client must get every update once), and the bridge's CPU
  per delivered event over the sending time.

Prints one JSON object.
"""
import argparse
import json
import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import http.client

import redis

from faultsuite.servers import free_port, start_plain

P = "taskstatus"
STATUSES = ["SUCCESS", "WARNING", "ERROR", "TERMINATED", "TEMPERROR"]


def process_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def task(i, now_ms, rng):
    created = now_ms - rng.randrange(90 * 86400 * 1000)
    running = i % 5 == 0
    return {
        "id": "task-%06d" % i, "type": rng.choice(["QUARTZ", "QPOC", "QUEUED_TASK"]), "uniqueName": "Aggregation %d" % i,
        "description": "Aggregates accounts", "parentName": None, "launcher": "svc-%d" % (i % 7),
        "target": {"id": "src-%d" % (i % 50), "type": "APPLICATION", "name": "Source %d" % (i % 50)},
        "created": iso(created), "modified": iso(created), "launched": iso(created),
        "completed": None if running else iso(created + 60000), "completionStatus": None if running else STATUSES[i % 7 % 5],
        "messages": [], "returns": [], "attributes": {}, "progress": "Started", "percentComplete": 0 if running else 100,
    }


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else None


def seed(r, args, now_ms):
    rng = random.Random(7)
    tasks = [task(i, now_ms, rng) for i in range(args.tasks)]
    for start in range(0, len(tasks), 1000):
        pipe = r.pipeline(transaction=False)
        for t in tasks[start:start + 1000]:
            pipe.xadd(f"{P}:requests", {"create": json.dumps(t), "request-id": "seed-" + t["id"], "x-sailpoint-experimental": "true"})
        pipe.execute()
    deadline = time.monotonic() + 600
    while True:
        counted = sum(r.zcard(f"{P}:index:{s}") for s in ["none"] + STATUSES)
        if counted >= args.tasks:
            return tasks
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {counted} of {args.tasks} tasks indexed after 600 s")
        time.sleep(0.2)


def timed_get(conn, path, headers):
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    return time.perf_counter() - started, response, body


def list_bench(port, tasks, args):
    from urllib.parse import quote
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"X-SailPoint-Experimental": "true"}
    running = sorted((t for t in tasks if t["completionStatus"] is None), key=lambda t: (t["created"], t["id"]), reverse=True)
    rng = random.Random(11)
    results = {}
    queries = {
        "running, newest first, 250": "/v2026/task-status?filters=" + quote("completionStatus isnull") + "&sorters=-created&limit=250",
        "the same with count=true": "/v2026/task-status?filters=" + quote("completionStatus isnull") + "&sorters=-created&limit=250&count=true",
    }
    for name, path in queries.items():
        times = []
        for _ in range(args.queries):
            elapsed, response, body = timed_get(conn, path, headers)
            page = json.loads(body)
            if response.status != 200 or [t["id"] for t in page] != [t["id"] for t in running[:250]]:
                raise RuntimeError(f"{name}: {response.status}, not the newest running tasks")
            if "count" in path and response.getheader("X-Total-Count") != str(len(running)):
                raise RuntimeError(f"{name}: X-Total-Count {response.getheader('X-Total-Count')}, not {len(running)}")
            times.append(elapsed)
        results[name] = {"p50_ms": percentile(times, 0.5) * 1e3, "p99_ms": percentile(times, 0.99) * 1e3}
    times = []
    for _ in range(args.queries):
        ids = rng.sample([t["id"] for t in tasks], 50)
        path = "/v2026/task-status?filters=" + quote("id in (" + ",".join('"%s"' % i for i in ids) + ")")
        elapsed, response, body = timed_get(conn, path, headers)
        if response.status != 200 or sorted(t["id"] for t in json.loads(body)) != sorted(ids):
            raise RuntimeError(f"id in: {response.status}, not the 50 tasks asked for")
        times.append(elapsed)
    results["id in (50 ids)"] = {"p50_ms": percentile(times, 0.5) * 1e3, "p99_ms": percentile(times, 0.99) * 1e3}
    conn.close()
    return results


class Watchers:
    """Clients of the live stream, read by one thread with a selector: arrival time per request id."""

    def __init__(self, port, count):
        self.arrivals = {}
        self.events = 0
        self.repeats = 0
        self.lock = threading.Lock()
        self.selector = selectors.DefaultSelector()
        self.stop = False
        for k in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /v2026/task-status HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                      b"X-SailPoint-Experimental: true\r\n\r\n")
            s.setblocking(False)
            self.selector.register(s, selectors.EVENT_READ, {"client": k, "buffer": b"", "seen": set()})
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        marker = b'"requestId":"'
        while not self.stop:
            for key, _ in self.selector.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    self.selector.unregister(key.fileobj)
                    continue
                now = time.monotonic()
                state = key.data
                buffer = state["buffer"] + data
                lines = buffer.split(b"\n")
                state["buffer"] = lines.pop()
                for line in lines:
                    if not line.startswith(b"data: "):
                        continue
                    at = line.find(marker)
                    if at < 0:
                        continue
                    rid = line[at + len(marker):line.index(b'"', at + len(marker))].decode()
                    with self.lock:
                        self.events += 1
                        if rid in state["seen"]:
                            self.repeats += 1
                        state["seen"].add(rid)
                        self.arrivals.setdefault(rid, []).append(now)

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()


def watch_bench(r, port, bridge_pid, args):
    watchers = Watchers(port, args.clients)
    time.sleep(1.0)
    sub = r.pubsub(ignore_subscribe_messages=True)
    channel = f"{P}:replies:watch-bench"
    sub.subscribe(channel)
    replies = {}

    def listen():
        while len(replies) < args.updates:
            message = sub.get_message(timeout=1.0)
            if message is not None:
                reply = json.loads(message["data"])
                replies[reply["requestId"]] = (time.monotonic(), reply["status"])

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    cpu0 = process_cpu(bridge_pid)
    started = time.monotonic()
    for k in range(args.updates):
        due = started + k / args.rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        r.xadd(f"{P}:requests", {"id": "task-%06d" % (k % 1000 * 5), "request-id": "w%d" % k, "reply-to": channel,
                                 "patch": json.dumps([{"op": "replace", "path": "/percentComplete", "value": k % 100}]),
                                 "x-sailpoint-experimental": "true"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with watchers.lock:
            complete = sum(len(v) for v in watchers.arrivals.values()) >= args.updates * args.clients
        if complete and len(replies) >= args.updates:
            break
        time.sleep(0.1)
    cpu = process_cpu(bridge_pid) - cpu0
    listener.join(timeout=2)
    watchers.close()
    latencies = []
    missing = 0
    for k in range(args.updates):
        rid = "w%d" % k
        if rid not in replies or replies[rid][1] != 200:
            raise RuntimeError(f"{rid}: no 200 reply ({replies.get(rid)})")
        arrivals = watchers.arrivals.get(rid, [])
        missing += args.clients - len(arrivals)
        latencies += [max(0.0, at - replies[rid][0]) for at in arrivals]
    delivered = watchers.events
    return {"clients": args.clients, "updates": args.updates, "rate": args.rate, "events": delivered,
            "missing": missing, "repeated": watchers.repeats,
            "p50_ms": percentile(latencies, 0.5) * 1e3, "p99_ms": percentile(latencies, 0.99) * 1e3,
            "cpu_us_per_event": cpu / max(1, delivered) * 1e6}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("command")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="watch-bench.")
    server, port = start_plain(workdir)
    r = redis.Redis(port=port)
    bridge = None
    try:
        http_port = free_port()
        env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{port}/0", HTTP_PORT=str(http_port))
        log = open(os.path.join(workdir, "bridge.log"), "a")
        bridge = subprocess.Popen(["sh", "-c", "exec " + args.command], env=env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2)
                conn.request("GET", "/health/ready")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or bridge.poll() is not None:
                raise RuntimeError("the bridge did not become ready")
            time.sleep(0.1)
        now_ms = int(time.time() * 1000)
        seeded = time.monotonic()
        tasks = seed(r, args, now_ms)
        seed_seconds = time.monotonic() - seeded
        index_bytes = sum(r.memory_usage(f"{P}:index:{s}", samples=0) or 0 for s in ["none"] + STATUSES)
        result = {"tasks": args.tasks, "seed_seconds": seed_seconds, "index_bytes_per_task": index_bytes / args.tasks,
                  "list": list_bench(http_port, tasks, args), "watch": watch_bench(r, http_port, bridge.pid, args)}
        print(json.dumps(result))
    finally:
        if bridge is not None and bridge.poll() is None:
            os.killpg(bridge.pid, signal.SIGTERM)
            try:
                bridge.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(bridge.pid, signal.SIGKILL)
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
