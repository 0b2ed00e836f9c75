#!/usr/bin/env python3
"""The drain benchmark on one Redis and on a Redis Cluster of three masters, in one run.

For each round, for one node and for three masters, in each Pub/Sub mode: stores TASKS tasks,
queues REQUESTS requests on the shard streams (contract section 7, `--shards SHARDS`), starts the
bridge and times it until every shard is drained; then checks every stored reply and every
task's revision. The Redis servers of both sides run with the same settings (no persistence, no
replicas), on loopback ports of their own.

Reports, per run and as medians: throughput, the bridge's CPU per request, and each node's Redis
CPU per request (INFO cpu, from the bridge's start to the drain's end). Checks, with the sharded
mode, that the masters' Redis CPU per request summed stays within 1.25x of one node's, and that no
master carries more than 45% of it.

Usage: cluster_drain.py --bin BRIDGE [--requests N] [--tasks N] [--rounds R] [--shards N]
                        [--modes classic,sharded] [--workdir DIR]
The workload is the repository's (faultsuite/workload.py: bench_task, bench_patch): the same
shapes and mix as the reference drain (../shared/bench/drain.py), so that the figures compare.
"""
import argparse, json, os, random, shutil, statistics, subprocess, sys, tempfile, time

import redis

from faultsuite.resp import key_slot
from faultsuite.servers import cluster_port as free_port
from faultsuite.workload import bench_patch as patch, bench_task as task

P = "taskstatus"


class Servers:
    """One plain node, or three cluster masters."""

    def __init__(self, workdir, cluster):
        self.cluster, self.procs, self.ports = cluster, [], []
        for i in range(3 if cluster else 1):
            port = free_port()
            d = os.path.join(workdir, f"{'c' if cluster else 'n'}{port}")
            os.makedirs(d)
            args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", d, "--logfile", os.path.join(d, "redis.log")]
            if cluster:
                args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"]
            self.procs.append(subprocess.Popen(args, cwd=d))
            self.ports.append(port)
        for port in self.ports:
            for _ in range(200):
                try:
                    redis.Redis(port=port).ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
        if cluster:
            subprocess.run(["redis-cli", "--cluster", "create"] + [f"127.0.0.1:{p}" for p in self.ports] +
                           ["--cluster-replicas", "0", "--cluster-yes"], check=True, stdout=subprocess.DEVNULL)
            for _ in range(400):
                if all(b"cluster_state:ok" in redis.Redis(port=p).execute_command("CLUSTER", "INFO") for p in self.ports):
                    break
                time.sleep(0.05)
        self.nodes = [redis.Redis(port=p) for p in self.ports]
        self.slots = []  # (start, end, node index)
        if cluster:
            for start, end, master, *_ in self.nodes[0].execute_command("CLUSTER", "SLOTS"):
                self.slots.append((start, end, self.ports.index(master[1])))

    def node(self, key):
        if not self.cluster:
            return 0
        slot = key_slot(key)
        return next(i for s, e, i in self.slots if s <= slot <= e)

    def pipelines(self):
        return [n.pipeline(transaction=False) for n in self.nodes]

    def bridge_args(self):
        if self.cluster:
            return ["--redis-cluster", ",".join(f"127.0.0.1:{p}" for p in self.ports)]
        return ["--redis-url", f"redis://127.0.0.1:{self.ports[0]}/0"]

    def cpu(self):
        return [float(n.info("cpu")["used_cpu_sys"]) + float(n.info("cpu")["used_cpu_user"]) for n in self.nodes]

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait()


def prepare(servers, shards, tasks, requests, seed):
    rng = random.Random(seed)
    for n in servers.nodes:
        n.flushall()
    pipes = servers.pipelines()
    for i in range(tasks):
        key = f"{P}:task:{{t{i:06d}}}"
        pipes[servers.node(key)].hset(key, mapping=task(i))
    for k in range(shards):
        stream = f"{P}:requests:{{s{k}}}" if shards > 1 else f"{P}:requests"
        pipes[servers.node(stream)].xgroup_create(stream, f"{P}-bridge", id="0", mkstream=True)
    for p in pipes:
        p.execute()
    expected = {}
    pipes = servers.pipelines()
    for k in range(requests):
        tid = f"t{rng.randrange(tasks):06d}"
        body, status = patch(rng, tid, k)
        rid = f"r{k}"
        expected[rid] = (tid, status)
        shard = key_slot(f"{P}:task:{{{tid}}}") % shards
        stream = f"{P}:requests:{{s{shard}}}" if shards > 1 else f"{P}:requests"
        # Each producer has a reply channel of its own (here: one per task), as services do.
        pipes[servers.node(stream)].xadd(stream, {"id": tid, "patch": body, "request-id": rid,
                                                   "reply-to": f"bench:replies:{{{tid}}}", "x-sailpoint-experimental": "true"})
        if k % 2000 == 1999:
            for p in pipes:
                p.execute()
            pipes = servers.pipelines()
    for p in pipes:
        p.execute()
    return expected


def open_work(servers, shards):
    total = 0
    for k in range(shards):
        stream = f"{P}:requests:{{s{k}}}" if shards > 1 else f"{P}:requests"
        for g in servers.nodes[servers.node(stream)].xinfo_groups(stream):
            total += (g.get("lag") or 0) + g["pending"]
    return total


def verify(servers, expected, tasks):
    wrong, successes = 0, {}
    rids = list(expected)
    for start in range(0, len(rids), 5000):
        chunk = rids[start:start + 5000]
        pipes, order = servers.pipelines(), []
        for rid in chunk:
            key = f"{P}:reply:{{{expected[rid][0]}}}:{rid}"
            i = servers.node(key)
            pipes[i].get(key)
            order.append(i)
        results = [iter(p.execute()) for p in pipes]
        for rid, i in zip(chunk, order):
            raw = next(results[i])
            tid, status = expected[rid]
            got = json.loads(raw)["status"] if raw else None
            if got != status:
                wrong += 1
                if wrong <= 3:
                    print(f"  request {rid}: expected status {status}, got {got}", file=sys.stderr)
            if status == 200:
                successes[tid] = successes.get(tid, 0) + 1
    for i in range(tasks):
        tid = f"t{i:06d}"
        key = f"{P}:task:{{{tid}}}"
        rev = servers.nodes[servers.node(key)].hget(key, "_rev")
        if int(rev or 0) != 1 + successes.get(tid, 0):
            wrong += 1
            if wrong <= 6:
                print(f"  task {tid}: _rev {rev}, expected {1 + successes.get(tid, 0)}", file=sys.stderr)
    return wrong


def process_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(args, servers, mode, seed, logdir, label):
    expected = prepare(servers, args.shards, args.tasks, args.requests, seed)
    cpu0 = servers.cpu()
    log = open(os.path.join(logdir, f"{label}.log"), "w")
    cmd = [args.bin, "serve", "--no-auth", "--http-host", "127.0.0.1", "--http-port", "0", "--log-level", "warning",
           "--shards", str(args.shards), "--pubsub", mode] + servers.bridge_args()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = start + args.timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError(f"{label}: the bridge exited ({proc.returncode}); see {log.name}")
        if open_work(servers, args.shards) == 0:
            break
    elapsed = time.monotonic() - start
    bridge_cpu = process_cpu(proc.pid)
    redis_cpu = [b - a for a, b in zip(cpu0, servers.cpu())]
    proc.terminate()
    proc.wait()
    wrong = verify(servers, expected, args.tasks)
    n = args.requests
    result = {"rate": n / elapsed, "bridge_us": bridge_cpu / n * 1e6, "redis_us": [c / n * 1e6 for c in redis_cpu], "wrong": wrong}
    nodes = ", ".join(f"{c:.1f}" for c in result["redis_us"])
    print(f"  {label}: {result['rate']:,.0f} requests/s, bridge CPU {result['bridge_us']:.1f} us/request, "
          f"Redis CPU us/request per node [{nodes}] sum {sum(result['redis_us']):.1f}, "
          f"{'all answers right' if wrong == 0 else f'{wrong} WRONG'}", flush=True)
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--requests", type=int, default=30000)
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--modes", default="classic,sharded")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="cluster-drain-")
    modes = args.modes.split(",")
    one, three = Servers(os.path.join(workdir, "one"), False), Servers(os.path.join(workdir, "three"), True)
    results = {}
    try:
        for r in range(args.rounds):
            for mode in modes:
                for name, servers in (("one node", one), ("three masters", three)):
                    label = f"{name}, --pubsub {mode}, round {r + 1}"
                    results.setdefault((name, mode), []).append(run_once(args, servers, mode, 1000 + r, workdir, label.replace(" ", "_").replace(",", "")))
    finally:
        one.stop()
        three.stop()
    ok = True
    print()
    for mode in modes:
        rows = {}
        for name in ("one node", "three masters"):
            runs = results[(name, mode)]
            ok &= all(x["wrong"] == 0 for x in runs)
            nodes = [statistics.median(x["redis_us"][i] for x in runs) for i in range(len(runs[0]["redis_us"]))]
            rows[name] = (statistics.median(x["rate"] for x in runs), statistics.median(x["bridge_us"] for x in runs), nodes)
            rate, bridge, nodes = rows[name]
            shares = ", ".join(f"{c / sum(nodes):.0%}" for c in nodes)
            print(f"median {name.replace(' ', '_')} {mode}: {rate:,.0f} requests/s, bridge CPU {bridge:.1f} us/request, "
                  f"Redis CPU {sum(nodes):.1f} us/request summed (per node {', '.join(f'{c:.1f}' for c in nodes)}; shares {shares})")
        ratio = sum(rows["three masters"][2]) / sum(rows["one node"][2])
        top = max(rows["three masters"][2]) / sum(rows["three masters"][2])
        print(f"ratio {mode}: Redis CPU per request, three masters summed / one node = {ratio:.2f}; busiest master {top:.0%}")
        if mode == "sharded":
            if ratio > 1.25:
                print(f"FAIL: with --pubsub sharded the masters' Redis CPU per request is {ratio:.2f}x one node's (the bound is 1.25x)")
                ok = False
            if top > 0.45:
                print(f"FAIL: the busiest master carries {top:.0%} of the Redis CPU (the bound is 45%)")
                ok = False
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
