#!/usr/bin/env python3
"""What a request costs a bridge at a steady rate (scripts/bench rate).

Runs each bridge command (NAME='COMMAND', as drain.py takes them) at each --rates value on the
stream path, open loop: one XADD at a time on a fixed schedule (request k is due at start + k/rate;
a sender that falls behind sends at once and counts it as late), each reply read on Pub/Sub by a
receiver in a process of its own. Rounds are interleaved (bridge, peer, bridge, peer, ...) and
every run gets a fresh redis-server on a free loopback port, the tasks and request mix of
../shared/bench/workload.py (the repository's copy: faultsuite/workload.py's bench_task and
bench_patch).

Measured the same way for every bridge, from just before the first measured XADD until Redis
shows every entry read and acknowledged (a warm-up of --warmup seconds at the same rate comes
first and is not counted):
  - CPU time of the bridge process (/proc/PID/stat, user + system) per request;
  - wake-ups per request: voluntary context switches summed over /proc/PID/task/*/status
    (involuntary ones, preemptions, beside them), and the same by thread name;
  - latency from sending the XADD to receiving the reply on Pub/Sub: p50 and p99;
  - the CPU time of the run's redis-server per request, beside it.
Every answer is checked: one reply per request on Pub/Sub with the expected status (a missing
publication is looked up where the bridge stores replies and counted as missing all the same),
and every task's _rev equals 1 + its successful updates.

Usage: rate_bench.py [--rates 1000,5000] [--rounds 3] [--seconds 10] NAME='COMMAND' ...
Each COMMAND runs under `sh -c 'exec COMMAND'` with REDIS_URL set. The first bridge is the one
the ratios are of (ratio FIRST/OTHER of CPU per request). Exit status 0 only when every run got
every answer right.
"""
import argparse, json, multiprocessing, os, random, shutil, signal, statistics, subprocess, sys, tempfile, time, types

import redis

from faultsuite.servers import free_port
from faultsuite.workload import bench_patch, bench_task

P = os.environ.get("TASKSTATUS_PREFIX", "taskstatus")
STREAM, GROUP = f"{P}:requests", f"{P}-bridge"



def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_switches(pid):
    """{tid: (name, voluntary, nonvoluntary)} of the process's live threads."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except OSError:
            continue  # ended meanwhile
        threads[tid] = (fields["Name"].strip(), int(fields["voluntary_ctxt_switches"]), int(fields["nonvoluntary_ctxt_switches"]))
    return threads


def switches_by_name(before, after):
    """{name: [voluntary, nonvoluntary]} between two samples; new threads count from zero."""
    out = {}
    for tid, (name, v, n) in after.items():
        _, v0, n0 = before.get(tid, (name, 0, 0))
        got = out.setdefault(name, [0, 0])
        got[0] += v - v0
        got[1] += n - n0
    return out


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def receive(port, channel, end, ready, results):
    """The receiver process: records (request id, status, receive time in ns) per reply until `end` comes."""
    r = redis.Redis(port=port)
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(channel)
    sub.get_message(timeout=1)  # the subscription's confirmation
    ready.send(True)
    got = []
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        message = sub.get_message(timeout=1)
        if message is None:
            continue
        now = time.monotonic_ns()
        data = message["data"]
        if data == end:
            break
        try:
            reply = json.loads(data)
            got.append((reply.get("requestId"), reply.get("status"), now))
        except ValueError:
            got.append((None, None, now))
    results.send(got)
    results.close()


def group_progress(r):
    for g in r.xinfo_groups(STREAM):
        if g["name"] == GROUP:
            return g.get("entries-read") or 0, g["pending"]
    return 0, 0


def wait_settled(r, total, proc, name, timeout):
    """Until the group has read `total` entries and holds none pending; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        read, pending = group_progress(r)
        if read >= total and pending == 0:
            return True
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        time.sleep(0.005)
    return False


def send(r, requests, rate, reply_to, sent):
    """XADDs one at a time on schedule; fills sent[rid] with the send time; returns how many went out over 1 ms late."""
    interval = 1e9 / rate
    start = time.monotonic_ns() + 2_000_000
    late = 0
    for k, (rid, tid, body, _) in enumerate(requests):
        due = start + int(k * interval)
        now = time.monotonic_ns()
        if now < due:
            time.sleep((due - now) / 1e9)
            now = time.monotonic_ns()
        elif now - due > 1_000_000:
            late += 1
        sent[rid] = now
        r.xadd(STREAM, {"id": tid, "patch": body, "request-id": rid, "reply-to": reply_to, "x-sailpoint-experimental": "true"})
    return late


def make_requests(rng, count, tasks, prefix, workload):
    out = []
    for k in range(count):
        tid = f"t{rng.randrange(tasks):06d}"
        body, status = workload.patch(rng, tid, k)
        out.append((f"{prefix}{k}", tid, body, status))
    return out


def wait_for_consumer(r, proc, name, timeout=60):
    """Until the bridge has made the group and blocks reading it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} during start-up")
        try:
            if any(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") for c in r.client_list()):
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start reading the stream within {timeout} s")


def stop(proc):
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_once(name, cmd, rate, args, seed, workload, logdir):
    port = free_port()
    data = tempfile.mkdtemp(prefix="rate-redis-")
    server = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", data],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = None
    try:
        r = redis.Redis(port=port, decode_responses=True)
        for _ in range(200):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        pipe = r.pipeline(transaction=False)
        for i in range(args.tasks):
            pipe.hset(f"{P}:task:{{t{i:06d}}}", mapping=workload.task(i))
        pipe.execute()
        log = open(os.path.join(logdir, f"{name}.log"), "a")
        env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{port}/0")
        proc = subprocess.Popen(["sh", "-c", "exec " + cmd], env=env, stdout=log, stderr=log, start_new_session=True)
        wait_for_consumer(r, proc, name)

        rng = random.Random(seed)
        warm = make_requests(rng, max(1, int(rate * args.warmup)), args.tasks, "w", workload)
        count = int(rate * args.seconds)
        measured = make_requests(rng, count, args.tasks, "m", workload)
        channel, end = "bench:rate:replies", b"end of the run"

        send(r, warm, rate, "bench:rate:warmup", {})
        if not wait_settled(r, len(warm), proc, name, 30):
            raise RuntimeError(f"{name} did not answer the warm-up within 30 s")

        receiver_ready, ready = multiprocessing.Pipe(duplex=False)
        results_in, results_out = multiprocessing.Pipe(duplex=False)
        receiver = multiprocessing.Process(target=receive, args=(port, channel, end, ready, results_out), daemon=True)
        receiver.start()
        if not receiver_ready.poll(10):
            raise RuntimeError("the receiver did not subscribe within 10 s")
        receiver_ready.recv()

        sent = {}
        cpu0, threads0, t0 = cpu_seconds(proc.pid), thread_switches(proc.pid), time.monotonic()
        redis0 = cpu_seconds(server.pid)
        late = send(r, measured, rate, channel, sent)
        settled = wait_settled(r, len(warm) + count, proc, name, args.reply_timeout)
        cpu1, threads1, t1 = cpu_seconds(proc.pid), thread_switches(proc.pid), time.monotonic()
        redis1 = cpu_seconds(server.pid)
        r.publish(channel, end)
        if not results_in.poll(30):
            raise RuntimeError("the receiver did not report within 30 s")
        got = results_in.recv()
        receiver.join(5)

        expected = {rid: (tid, status) for rid, tid, _, status in measured}
        latencies, answered, wrong, extra, seen = [], 0, 0, 0, set()
        for rid, status, received in got:
            if rid not in expected or rid in seen:
                extra += 1
                continue
            seen.add(rid)
            answered += 1
            latencies.append((received - sent[rid]) / 1e6)
            if status != expected[rid][1]:
                wrong += 1
                if wrong <= 3:
                    print(f"  {name}: request {rid}: expected status {expected[rid][1]}, got {status}", file=sys.stderr)
        missing = [rid for rid in expected if rid not in seen]
        stored_only = 0
        if missing:
            pipe = r.pipeline(transaction=False)
            for rid in missing:
                pipe.get(f"{P}:reply:{{{expected[rid][0]}}}:{rid}")
            stored_only = sum(1 for raw in pipe.execute() if raw)
        successes = {}
        for rid, tid, _, status in warm + measured:
            if status == 200:
                successes[tid] = successes.get(tid, 0) + 1
        pipe = r.pipeline(transaction=False)
        for i in range(args.tasks):
            pipe.hget(f"{P}:task:{{t{i:06d}}}", "_rev")
        bad_rev = sum(1 for i, rev in enumerate(pipe.execute()) if int(rev or 0) != 1 + successes.get(f"t{i:06d}", 0))
    finally:
        if proc is not None:
            stop(proc)
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)

    latencies.sort()
    threads = switches_by_name(threads0, threads1)
    voluntary = sum(v for v, _ in threads.values())
    nonvoluntary = sum(n for _, n in threads.values())
    n = max(1, answered)
    result = {
        "cpu": (cpu1 - cpu0) * 1e6 / n, "redis": (redis1 - redis0) * 1e6 / n, "wakeups": voluntary / n, "preemptions": nonvoluntary / n,
        "p50": percentile(latencies, 0.50), "p99": percentile(latencies, 0.99),
        "seconds": t1 - t0, "threads": {k: v[0] / n for k, v in threads.items()},
    }
    problems = len(missing) + wrong + extra + bad_rev + (0 if settled else 1)
    busy = sorted(((w, k) for k, w in result["threads"].items() if w >= 0.01), reverse=True)
    print(f"{name} {rate:.0f}/s: {answered:,}/{count:,} replies in {t1 - t0:.2f} s, "
          f"CPU {result['cpu']:.1f} us/request (Redis {result['redis']:.1f}), wake-ups {result['wakeups']:.2f}/request "
          f"(preemptions {result['preemptions']:.2f}), latency p50 {result['p50']:.3f} ms p99 {result['p99']:.3f} ms, "
          f"late sends {late}, missing {len(missing)} ({stored_only} stored only), wrong statuses {wrong}, "
          f"wrong revisions {bad_rev}, other replies {extra}", flush=True)
    print("  wake-ups per request by thread: " + ", ".join(f"{k} {w:.2f}" for w, k in busy), flush=True)
    return result, problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="1000,5000", help="requests per second, comma-separated")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10, help="measured seconds per run (at most 600)")
    ap.add_argument("--warmup", type=float, default=1, help="seconds at the rate before measuring")
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--reply-timeout", type=float, default=30, help="seconds to wait for the last answers")
    ap.add_argument("--shared", default=os.environ.get("SHARED_BENCH", os.path.join(os.path.dirname(__file__), "../../../shared/bench")))
    ap.add_argument("--logdir", default=None)
    ap.add_argument("bridges", nargs="+", help="NAME=COMMAND")
    args = ap.parse_args()
    if not 0 < args.seconds <= 600 or not 0 < args.rounds <= 50:
        ap.error("--seconds must be in (0, 600] and --rounds in 1..50")
    rates = [float(x) for x in args.rates.split(",")]
    if not all(0 < x <= 50_000 for x in rates):
        ap.error("--rates must be between 0 and 50000")
    # The repository's copy of the benchmark mix (faultsuite/workload.py), as cluster_drain.py uses.
    workload = types.SimpleNamespace(task=bench_task, patch=bench_patch)
    logdir = args.logdir or tempfile.mkdtemp(prefix="rate-bench-")
    os.makedirs(logdir, exist_ok=True)
    bridges = [b.split("=", 1) for b in args.bridges]
    results = {(n, rate): [] for n, _ in bridges for rate in rates}
    failures = 0
    multiprocessing.set_start_method("fork")
    for rnd in range(args.rounds):
        for rate in rates:
            for name, cmd in bridges:  # interleaved, so that drift hits every bridge alike
                try:
                    result, problems = run_once(name, cmd, rate, args, rnd, workload, logdir)
                except RuntimeError as e:
                    print(f"{name} {rate:.0f}/s: FAILED: {e}", flush=True)
                    failures += 1
                    continue
                results[(name, rate)].append(result)
                failures += problems
    for rate in rates:
        medians = {}
        for name, _ in bridges:
            runs = results[(name, rate)]
            if not runs:
                continue
            m = {k: statistics.median(x[k] for x in runs) for k in ("cpu", "redis", "wakeups", "preemptions", "p50", "p99")}
            medians[name] = m
            print(f"median {name} {rate:.0f}/s: CPU {m['cpu']:.1f} us/request, wake-ups {m['wakeups']:.2f}/request, "
                  f"preemptions {m['preemptions']:.2f}/request, p50 {m['p50']:.3f} ms, p99 {m['p99']:.3f} ms, "
                  f"Redis CPU {m['redis']:.1f} us/request ({len(runs)} runs)")
        first = bridges[0][0]
        for name, _ in bridges[1:]:
            if first in medians and name in medians:
                print(f"ratio {first}/{name} {rate:.0f}/s: CPU per request {medians[first]['cpu'] / medians[name]['cpu']:.3f}, "
                      f"wake-ups per request {medians[first]['wakeups'] / medians[name]['wakeups']:.2f}")
    print(f"logs: {logdir}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
