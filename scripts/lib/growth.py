#!/usr/bin/env python3
"""Cost and memory as one task grows (scripts/bench growth).

For each bridge command, in turn: a private redis-server on a free loopback port, one task
(`faultsuite.workload.bench_task`), and N appends sent one request at a time, as a long task logs: `add
/messages/-` (a message of about 150 bytes) and a `percentComplete`, each sent with XADD once the
reply to the one before arrived on Pub/Sub (so every figure is the cost of one request, not of a
batch). At each checkpoint (by the number of messages on the task) it prints the bridge's CPU and
Redis's CPU per append over the appends just before it, and at the end how much Redis's memory
grew (INFO used_memory, after the task was stored) against the task's own size (its JSON). Every
reply is checked: status 200 and the revision that follows the one before.

    growth.py --messages 3000 --checkpoints 1000,3000 --window 100 NAME='COMMAND' ...

Each COMMAND runs with REDIS_URL set, like drain.py's.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import redis

from faultsuite.servers import start_plain
from faultsuite.workload import bench_task

P = "taskstatus"
TID = "t000000"



def process_cpu(pid):
    """User plus system CPU seconds of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu(r):
    info = r.info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


def append_patch(k):
    return json.dumps([
        {"op": "add", "path": "/messages/-",
         "value": {"type": "INFO", "localizedText": {"locale": "en-US", "message": f"Aggregated batch {k} of accounts"},
                   "key": f"aggregation-{k}", "parameters": None}},
        {"op": "replace", "path": "/percentComplete", "value": k % 100},
    ])


def run(name, cmd, args, workdir):
    server, port = start_plain(workdir)
    r = redis.Redis(port=port)
    bridge = None
    try:
        r.hset(f"{P}:task:{{{TID}}}", mapping=bench_task(0))
        sub = r.pubsub(ignore_subscribe_messages=True)
        channel = f"{P}:replies:growth"
        sub.subscribe(channel)
        env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{port}/0")
        log = open(os.path.join(workdir, f"{name}.log"), "a")
        bridge = subprocess.Popen(["sh", "-c", "exec " + cmd], env=env, stdout=log, stderr=log, start_new_session=True)
        k = 0
        memory_before = None
        rows, marks = [], {}
        checkpoints = sorted(args.checkpoints)
        last = checkpoints[-1]
        rev = 1
        task_bytes = 0
        started = time.monotonic()
        starts = {c - args.window: c for c in checkpoints}
        while k < last:
            at = k + 1
            if k in starts:
                marks[starts[k]] = (process_cpu(bridge.pid), redis_cpu(r), time.monotonic())
            rid = f"g{at}"
            r.xadd(f"{P}:requests", {"id": TID, "patch": append_patch(at), "request-id": rid, "reply-to": channel,
                                     "x-sailpoint-experimental": "true"})
            deadline = time.monotonic() + args.timeout
            while True:
                message = sub.get_message(timeout=1.0)
                if message is not None:
                    break
                if bridge.poll() is not None:
                    raise RuntimeError(f"{name} exited with {bridge.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: no reply to {rid} within {args.timeout} s")
            reply = json.loads(message["data"])
            if reply.get("requestId") != rid or reply.get("status") != 200 or reply.get("rev") != rev + 1:
                raise RuntimeError(f"{name}: {rid} answered {json.dumps(reply)[:300]}")
            rev += 1
            k = at
            if k == 1:
                memory_before = r.info("memory")["used_memory"]
            if k in marks:
                cpu0, redis0, t0 = marks[k]
                n = args.window
                task_bytes = len(json.dumps(reply["body"], separators=(",", ":")).encode())
                rows.append((k, task_bytes, (process_cpu(bridge.pid) - cpu0) / n * 1e3, (redis_cpu(r) - redis0) / n * 1e3,
                             (time.monotonic() - t0) / n * 1e3))
        memory = r.info("memory")
        memory_after = memory["used_memory"]
        replies = list(r.scan_iter(f"{P}:reply:*", count=1000))
        sample = [r.memory_usage(key) or 0 for key in replies[:50]]
        breakdown = {"dataset": memory["used_memory_dataset"], "clients": memory.get("mem_clients_normal", 0),
                     "change feed": r.memory_usage(f"{P}:events") or 0, "task": r.memory_usage(f"{P}:task:{{{TID}}}") or 0,
                     "stored replies": len(replies) * sum(sample) // max(1, len(sample)),
                     "request stream": r.memory_usage(f"{P}:requests") or 0}
        messages = len(json.loads(r.hget(f"{P}:task:{{{TID}}}", "messages")))
        if messages != last or int(r.hget(f"{P}:task:{{{TID}}}", "_rev")) != last + 1:
            raise RuntimeError(f"{name}: the task holds {messages} messages, expected {last}")
        return {"rows": rows, "growth": memory_after - memory_before, "task": task_bytes, "breakdown": breakdown,
                "seconds": time.monotonic() - started}
    finally:
        if bridge is not None and bridge.poll() is None:
            os.killpg(bridge.pid, signal.SIGTERM)
            try:
                bridge.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(bridge.pid, signal.SIGKILL)
        server.terminate()
        server.wait(timeout=10)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--checkpoints", default="1000,3000")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("bridges", nargs="+", metavar="NAME=COMMAND")
    args = parser.parse_args()
    args.checkpoints = sorted({int(c) for c in args.checkpoints.split(",") if int(c) <= args.messages} | {args.messages})
    if args.checkpoints[0] < args.window:
        parser.error("every checkpoint must be at least --window")
    results = {}
    with tempfile.TemporaryDirectory(prefix="growth.") as workdir:
        for spec in args.bridges:
            name, cmd = spec.split("=", 1)
            print(f"== {name}: {args.messages} appends to one task, one request at a time", flush=True)
            result = run(name, cmd, args, workdir)
            results[name] = result
            for k, size, cpu, rcpu, wall in result["rows"]:
                print(f"  {name}: {k} messages, task {size / 1024:.0f} KiB: bridge CPU {cpu:.3f} ms/append, "
                      f"Redis CPU {rcpu:.3f} ms/append, {wall:.2f} ms/append wall", flush=True)
            print(f"  {name}: Redis memory grew {result['growth'] / 1e6:.1f} MB for a task of {result['task'] / 1e6:.2f} MB "
                  f"({result['growth'] / max(1, result['task']):.1f}x) in {result['seconds']:.0f} s", flush=True)
            print(f"  {name}: Redis memory at the end, MB: " +
                  ", ".join(f"{k} {v / 1e6:.2f}" for k, v in result["breakdown"].items()), flush=True)
    names = list(results)
    if len(names) >= 2:
        a, b = names[0], names[1]
        for (k, _, ca, ra, _), (_, _, cb, rb, _) in zip(results[a]["rows"], results[b]["rows"]):
            print(f"ratio {a}/{b} at {k} messages: bridge CPU {ca / cb:.3f} (1/{cb / ca:.0f}), Redis CPU {ra / rb:.3f}")
        print(f"ratio {a}/{b}: memory growth per task byte {results[a]['growth'] / max(1, results[a]['task']):.1f}x "
              f"against {results[b]['growth'] / max(1, results[b]['task']):.1f}x")


if __name__ == "__main__":
    main()
