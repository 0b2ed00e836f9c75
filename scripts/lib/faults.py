#!/usr/bin/env python3
"""The fault suite: a backlog, a fault, and a checker that compares every reply and every task with
what was sent (see docs/operations.md, "Proving the promise: scripts/faults").

Each scenario starts a fresh redis-server (AOF, appendfsync always) on a free loopback port, stores
a few hundred tasks, queues a backlog of update requests, starts the bridge(s), injects its fault
while the backlog drains, waits until every entry is acknowledged, and checks the end state:

- every request has a stored reply with the status its patch deserves (200, or 400 for a failing
  `test`, or 404 for a task that does not exist), the same for every copy of a repeated request id;
- every reply was published once per copy queued, byte for byte the stored one;
- a successful reply at revision R shows exactly the markers of revisions 2..R, in order: each
  request appends a unique marker (its request id) to its task's messages;
- every task's _rev is 1 plus its successful updates, and its messages hold each successful
  marker exactly once (a marker of a 200 missing is *lost*; one present twice is *doubled*);
- the change feed has every successful (id, rev), and no (id, rev) under two request ids;
- nothing is pending, nothing unread, nothing dead-lettered; the bridge never exited and stops
  with status 0 on SIGTERM.

Python 3 standard library only: a small RESP client is below.
"""
import argparse, json, os, random, shutil, signal, socket, subprocess, sys, tempfile, threading, time

PREFIX = "taskstatus"
REPLIES = "faults:replies"
BRIDGE_USER, BRIDGE_PASSWORD = "bridge", "fault-suite-bridge-password"


# ---------------------------------------------------------------------------------------------
# A minimal RESP2 client


class RedisError(Exception):
    pass


class Redis:
    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(max(1 << 16, n + 2 - len(self.buf)))
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ConnectionError("bad reply %r" % line)

    def pipeline(self, commands):
        for start in range(0, len(commands), 1000):
            chunk = commands[start:start + 1000]
            self.sock.sendall(b"".join(self.encode(c) for c in chunk))
            yield from (self.read() for _ in chunk)

    def __call__(self, *args):
        self.sock.sendall(self.encode(args))
        reply = self.read()
        if isinstance(reply, RedisError):
            raise reply
        return reply


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def pairs(flat):
    return {text(flat[i]): flat[i + 1] for i in range(0, len(flat or []), 2)}


# ---------------------------------------------------------------------------------------------
# Redis, the bridge, the subscriber


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """A redis-server with AOF (appendfsync always) and DEBUG enabled; the bridge's user can be
    kept off while the suite's subscriber comes back after a restart, so that no reply is
    published before anyone listens."""

    def __init__(self, directory, port):
        self.dir, self.port, self.proc = directory, port, None

    def start(self, bridge_user_on=True):
        os.makedirs(self.dir, exist_ok=True)
        state = "on" if bridge_user_on else "off"
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--enable-debug-command", "local", "--logfile", os.path.join(self.dir, "redis.log"),
             "--user", BRIDGE_USER, state, ">" + BRIDGE_PASSWORD, "~*", "&*", "+@all"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                r = Redis(self.port, timeout=2)
                if r("PING") == "PONG":
                    r.close()
                    return
            except (OSError, RedisError):
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start; see %s/redis.log" % self.dir)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def client(self):
        return Redis(self.port)


class Subscriber(threading.Thread):
    """Listens on the reply channel for the whole scenario, reconnecting when Redis goes away."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.messages, self.stop = port, [], threading.Event()
        self.connected = threading.Event()
        self.reconnects = 0

    def run(self):
        while not self.stop.is_set():
            try:
                r = Redis(self.port, timeout=0.5)
                r.sock.sendall(Redis.encode(["SUBSCRIBE", REPLIES]))
                r.read()
                self.connected.set()
                while not self.stop.is_set():
                    try:
                        message = r.read()
                    except socket.timeout:
                        continue
                    if isinstance(message, list) and len(message) == 3 and message[0] == b"message":
                        self.messages.append(message[2])
            except (OSError, ConnectionError, RedisError):
                self.connected.clear()
                self.reconnects += 1
                time.sleep(0.01)


class Bridge:
    def __init__(self, binary, port, log, consumer, extra=(), url=None):
        self.log = open(log, "ab")
        env = dict(os.environ, REDIS_URL=url or "redis://%s:%s@127.0.0.1:%d/0" % (BRIDGE_USER, BRIDGE_PASSWORD, port))
        self.http = free_port()
        self.proc = subprocess.Popen(
            [binary, "serve", "--no-auth", "--http-port", str(self.http), "--consumer", consumer,
             "--log-level", "warning", "--claim-idle-ms", "3000"] + list(extra),
            env=env, stdout=self.log, stderr=self.log, start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def refusals(self):
        """taskstatus_redis_refusals_total by reason, read from /metrics."""
        import urllib.request
        try:
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http, timeout=2).read().decode()
        except OSError:
            return {}
        counts = {}
        for line in body.splitlines():
            if line.startswith("taskstatus_redis_refusals_total{"):
                reason = line.split('reason="', 1)[1].split('"', 1)[0]
                counts[reason] = counts.get(reason, 0) + int(float(line.rsplit(" ", 1)[1]))
        return counts

    def stop(self):
        """SIGTERM, then the exit status (None if it had to be killed after 20 s)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self.log.close()


# ---------------------------------------------------------------------------------------------
# The workload


def task_document(i):
    return {
        "id": "f%04d" % i, "type": "QUARTZ", "uniqueName": "Fault suite task %d" % i,
        "description": "A task of the fault suite", "launcher": "faults",
        "created": "2026-11-30T10:00:00.000Z", "modified": "2026-11-30T10:00:00.000Z",
        "messages": "[]", "returns": "[]", "attributes": "{}", "percentComplete": "0", "_rev": "1",
    }


def workload(requests, tasks, repeats, seed):
    """The backlog, in stream order: (request id, task id, patch, expected status). About 3% fail a
    `test` (400) and 1% name a task that does not exist (404); the rest append their request id as
    a message. With `repeats`, a tenth of the request ids are queued as 8 copies in a row, as a
    producer retrying while the bridge is behind would."""
    rng = random.Random(seed)
    backlog = []
    k = 0
    while len(backlog) < requests:
        rid = "q%06d" % k
        k += 1
        roll = rng.random()
        if roll < 0.01:
            tid, status = "nope%04d" % rng.randrange(tasks), 404
            patch = [{"op": "add", "path": "/messages/-", "value": {"type": "INFO", "key": rid}}]
        elif roll < 0.04:
            tid, status = "f%04d" % rng.randrange(tasks), 400
            patch = [{"op": "test", "path": "/type", "value": "QPOC"},
                     {"op": "add", "path": "/messages/-", "value": {"type": "INFO", "key": rid}}]
        else:
            tid, status = "f%04d" % rng.randrange(tasks), 200
            patch = [{"op": "add", "path": "/messages/-", "value": {"type": "INFO", "key": rid}},
                     {"op": "replace", "path": "/progress", "value": "step %d" % k}]
        copies = 8 if repeats and rng.random() < 0.1 else 1
        for _ in range(copies):
            backlog.append((rid, tid, json.dumps(patch, separators=(",", ":")), status))
    return backlog[:requests]


def prepare(r, tasks, backlog):
    r("FLUSHALL")
    list(r.pipeline([["HSET", "%s:task:{f%04d}" % (PREFIX, i)] + [x for kv in task_document(i).items() for x in kv]
                     for i in range(tasks)]))
    list(r.pipeline([["XADD", PREFIX + ":requests", "*", "id", tid, "patch", patch, "request-id", rid,
                      "reply-to", REPLIES, "x-sailpoint-experimental", "true"] for rid, tid, patch, _ in backlog]))


def change_feed(r):
    """The change feed as {(task id, rev): {request ids}}, read in chunks."""
    feed, cursor = {}, "-"
    while True:
        chunk = r("XRANGE", PREFIX + ":events", cursor, "+", "COUNT", 5000)
        if not chunk:
            return feed
        for _, flat in chunk:
            f = pairs(flat)
            feed.setdefault((text(f.get("id")), int(f.get("rev", b"0"))), set()).add(text(f.get("request-id")))
        cursor = "(" + text(chunk[-1][0])


def progress(r):
    """(entries read by the group, pending, lag)."""
    try:
        for group in r("XINFO", "GROUPS", PREFIX + ":requests"):
            info = pairs(group)
            if text(info.get("name")) == PREFIX + "-bridge":
                return info.get("entries-read") or 0, info.get("pending") or 0, info.get("lag")
    except (RedisError, OSError, ConnectionError):
        pass
    return 0, None, None


# ---------------------------------------------------------------------------------------------
# The checker


def check(r, backlog, subscriber_messages):
    problems = []
    copies, expected, task_of = {}, {}, {}
    for rid, tid, _, status in backlog:
        copies[rid] = copies.get(rid, 0) + 1
        expected[rid], task_of[rid] = status, tid
    rids = list(expected)
    stored = dict(zip(rids, r.pipeline([["GET", "%s:reply:{%s}:%s" % (PREFIX, task_of[rid], rid)] for rid in rids])))
    counts = {"missing": 0, "wrong": 0, "lost": 0, "doubled": 0, "published_missing": 0, "published_extra": 0,
              "published_mismatch": 0, "feed_missing": 0, "feed_doubled": 0, "bad_revision": 0, "bad_body": 0}

    def note(kind, message):
        counts[kind] += 1
        if counts[kind] <= 3:
            problems.append(message)

    replies, successes = {}, {}
    for rid in rids:
        raw = stored[rid]
        if raw is None or isinstance(raw, RedisError):
            note("missing", "no stored reply for %s" % rid)
            continue
        reply = json.loads(raw)
        replies[rid] = reply
        if reply.get("status") != expected[rid]:
            note("wrong", "%s: status %s, expected %s (%s)" % (rid, reply.get("status"), expected[rid],
                                                            json.dumps(reply.get("body"))[:200]))
        elif expected[rid] == 200:
            successes.setdefault(task_of[rid], []).append((reply.get("rev"), rid))

    # Published: each copy once, byte for byte the stored reply.
    published = {}
    for payload in subscriber_messages:
        try:
            rid = json.loads(payload)["requestId"]
        except (ValueError, KeyError):
            continue
        published.setdefault(rid, []).append(payload)
    for rid in rids:
        got = published.get(rid, [])
        if len(got) < copies[rid]:
            note("published_missing", "%s: published %d times for %d copies" % (rid, len(got), copies[rid]))
        elif len(got) > copies[rid]:
            note("published_extra", "%s: published %d times for %d copies" % (rid, len(got), copies[rid]))
        if stored.get(rid) is not None and any(p != stored[rid] for p in got):
            note("published_mismatch", "%s: a published reply differs from the stored one" % rid)

    # Tasks: revisions 2..n+1 once each, every reply showing exactly the markers before it.
    tids = sorted({tid for tid in task_of.values() if tid.startswith("f")})
    hashes = dict(zip(tids, r.pipeline([["HGETALL", "%s:task:{%s}" % (PREFIX, tid)] for tid in tids])))
    for tid in tids:
        done = sorted(successes.get(tid, []), key=lambda x: (x[0] or 0))
        revs = [rev for rev, _ in done]
        if revs != list(range(2, 2 + len(done))):
            note("bad_revision", "%s: revisions of its 200s are %s..., expected 2..%d once each" % (tid, revs[:8], 1 + len(done)))
        fields = pairs(hashes[tid])
        if int(fields.get("_rev", b"0")) != 1 + len(done):
            note("bad_revision", "%s: _rev %s, expected %d" % (tid, text(fields.get("_rev")), 1 + len(done)))
        markers = [m["key"] for m in json.loads(fields.get("messages", b"[]"))]
        order = [rid for _, rid in done]
        for rid in order:
            n = markers.count(rid)
            if n == 0:
                note("lost", "%s: the marker of %s (answered 200) is not in the task" % (tid, rid))
            elif n > 1:
                note("doubled", "%s: the marker of %s is in the task %d times" % (tid, rid, n))
        extra = [m for m in markers if m not in set(order)]
        for m in extra:
            note("doubled" if m in expected else "lost", "%s: the task holds the marker of %s, which was not answered 200" % (tid, m))
        for position, (rev, rid) in enumerate(done):
            body_markers = [m["key"] for m in replies[rid]["body"].get("messages", [])]
            if body_markers != order[:position + 1]:
                note("bad_body", "%s at rev %s: the reply shows %d markers, not the %d before it in order" %
                     (rid, rev, len(body_markers), position + 1))

    # The change feed.
    feed = change_feed(r)
    for tid, done in successes.items():
        for rev, rid in done:
            if (tid, rev) not in feed:
                note("feed_missing", "the change feed lacks %s rev %s (%s)" % (tid, rev, rid))
    for key, ids in feed.items():
        if len(ids) > 1:
            note("feed_doubled", "the change feed has %s rev %d under %s" % (key[0], key[1], sorted(ids)))

    read, pending, lag = progress(r)
    dead = r("XLEN", PREFIX + ":requests:dead")
    if pending or lag or dead:
        problems.append("pending %s, lag %s, dead letters %s" % (pending, lag, dead))
    ok = all(v == 0 for v in counts.values()) and not pending and not lag and not dead
    return ok, counts, problems, sum(len(v) for v in successes.values())


# ---------------------------------------------------------------------------------------------
# Scenarios: each a name, how it sets up, and the fault it injects


def restart(server, subscriber, graceful):
    """Stops Redis (SIGKILL, or SHUTDOWN, which writes the AOF), restarts it on its AOF with the
    bridge's user off until the suite's subscriber is back, then lets the bridge in."""
    if graceful:
        try:
            server.client()("SHUTDOWN")
        except (OSError, ConnectionError, RedisError):
            pass
        server.proc.wait(timeout=30)
    else:
        server.kill(signal.SIGKILL)
    time.sleep(0.3)
    server.start(bridge_user_on=False)
    subscriber.connected.wait(10)
    time.sleep(0.05)
    server.client()("ACL", "SETUSER", BRIDGE_USER, "on")
    return "redis %s and restarted on its AOF" % ("shut down" if graceful else "killed (SIGKILL)")


def memory_full(server, seconds=3.0):
    r = server.client()
    used = int(pairs([x for line in text(r("INFO", "memory")).splitlines() if ":" in line
                      for x in line.split(":", 1)]).get("used_memory", b"1"))
    r("CONFIG", "SET", "maxmemory-policy", "noeviction")
    r("CONFIG", "SET", "maxmemory", str(max(1, used - 1024 * 1024)))
    time.sleep(seconds)
    r("CONFIG", "SET", "maxmemory", "0")
    return "maxmemory below used memory for %.0f s" % seconds


def client_kill(server):
    return "CLIENT KILL TYPE normal: %s clients" % server.client()("CLIENT", "KILL", "TYPE", "normal")


SCENARIOS = {
    # name: (bridges, repeats, [(fraction of the backlog read, fault)])
    "kill-restart": (1, False, [(0.3, lambda s, sub: restart(s, sub, graceful=False))]),
    "graceful-restart": (1, False, [(0.3, lambda s, sub: restart(s, sub, graceful=True))]),
    "client-kill": (1, False, [(f, lambda s, sub: client_kill(s)) for f in (0.15, 0.35, 0.55, 0.75)]),
    "client-pause": (1, False, [(0.3, lambda s, sub: "CLIENT PAUSE 2000: %s" % s.client()("CLIENT", "PAUSE", 2000))]),
    "debug-sleep": (1, False, [(0.3, lambda s, sub: "DEBUG SLEEP 2: %s" % s.client()("DEBUG", "SLEEP", 2))]),
    "memory-full": (1, False, [(0.3, lambda s, sub: memory_full(s))]),
    "script-flush": (1, False, [(f, lambda s, sub: "SCRIPT FLUSH: %s" % s.client()("SCRIPT", "FLUSH")) for f in (0.3, 0.6)]),
    "repeats": (1, True, []),
    "two-bridges": (2, True, [(0.3, lambda s, sub: restart(s, sub, graceful=False)),
                              (0.6, lambda s, sub: client_kill(s))]),
}


def run_scenario(name, args, seed):
    bridges_wanted, repeats, faults = SCENARIOS[name]
    directory = tempfile.mkdtemp(prefix="faults-%s-" % name, dir=args.workdir)
    server = Server(os.path.join(directory, "redis"), free_port())
    server.start()
    backlog = workload(args.requests, args.tasks, repeats, seed)
    r = server.client()
    prepare(r, args.tasks, backlog)
    subscriber = Subscriber(server.port)
    subscriber.start()
    subscriber.connected.wait(5)
    started = time.monotonic()
    bridges = [Bridge(args.bridge, server.port, os.path.join(directory, "bridge-%d.log" % k), "faults-%d" % k)
               for k in range(bridges_wanted)]
    injected, exited, pending_faults = [], False, list(faults)
    deadline = started + args.timeout
    r = None
    while time.monotonic() < deadline:
        try:
            r = r or server.client()
            read, pending, lag = progress(r)
        except (OSError, ConnectionError):
            r, read, pending, lag = None, 0, None, None
        if pending_faults and read >= pending_faults[0][0] * len(backlog):
            _, fault = pending_faults.pop(0)
            try:
                injected.append(fault(server, subscriber))
            except (OSError, ConnectionError, RedisError) as error:
                injected.append("fault failed: %s" % error)
            r = None
            continue
        if not pending_faults and read >= len(backlog) and pending == 0 and lag == 0:
            break
        if any(not b.alive() for b in bridges):
            exited = True
            break
        time.sleep(0.005)
    elapsed = time.monotonic() - started
    time.sleep(0.3)  # the last publishes reach the subscriber
    refusals = {}
    for b in bridges:
        for reason, n in b.refusals().items():
            refusals[reason] = refusals.get(reason, 0) + n
    alive = all(b.alive() for b in bridges) and not exited
    statuses = [b.stop() for b in bridges]
    subscriber.stop.set()
    r = server.client()
    ok, counts, problems, applied = check(r, backlog, list(subscriber.messages))
    timed_out = time.monotonic() >= deadline
    if not alive:
        problems.append("a bridge exited during the run (see %s)" % directory)
    if any(s != 0 for s in statuses):
        problems.append("a bridge stopped with status %s on SIGTERM" % statuses)
    if timed_out:
        problems.append("not done within %d s" % args.timeout)
    passed = ok and alive and all(s == 0 for s in statuses) and not timed_out and len(injected) == len(faults)
    if len(injected) != len(faults):
        problems.append("only %d of %d faults injected" % (len(injected), len(faults)))
    server.kill(signal.SIGTERM)
    ids = len({rid for rid, _, _, _ in backlog})
    print("%-16s %s  %d requests (%d ids, %d applied) in %.1f s with %d bridge(s); %s; refusals %s; "
          "replies missing %d wrong %d; published missing %d extra %d differing %d; lost %d doubled %d; "
          "revisions %d bodies %d; feed missing %d doubled %d"
          % (name, "PASS" if passed else "FAIL", len(backlog), ids, applied, elapsed, bridges_wanted,
             "; ".join(injected) or "no fault", refusals or "none", counts["missing"], counts["wrong"],
             counts["published_missing"], counts["published_extra"], counts["published_mismatch"],
             counts["lost"], counts["doubled"], counts["bad_revision"], counts["bad_body"],
             counts["feed_missing"], counts["feed_doubled"]), flush=True)
    for problem in problems:
        print("    " + problem, flush=True)
    if passed and not args.keep:
        shutil.rmtree(directory, ignore_errors=True)
    elif not passed:
        print("    logs and data: %s" % directory, flush=True)
    return passed


def main():
    # Stopped (scripts/faults interrupted): the scenario's `finally` stops its bridge and servers,
    # and a second signal (timeout(1) signals the whole group, the wrapper forwards one too) must
    # not cut that short.
    def stop(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(143)
    signal.signal(signal.SIGTERM, stop)
    from failover import SENTINEL_SCENARIOS, run_sentinel_scenario
    from cluster_faults import CLUSTER_SCENARIOS, run_cluster_scenario
    every = list(SCENARIOS) + list(SENTINEL_SCENARIOS) + list(CLUSTER_SCENARIOS)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bridge", required=True, help="the task-status-bridge executable")
    ap.add_argument("--requests", type=int, default=10000, help="the backlog of each Redis scenario")
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--rate", type=int, default=1000, help="requests a second in the failover and cluster scenarios")
    ap.add_argument("--seconds", type=float, default=30, help="how long the failover and cluster scenarios' load runs")
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the data and logs of passing scenarios too")
    ap.add_argument("scenarios", nargs="*", help="some of: " + ", ".join(every))
    args = ap.parse_args()
    names = args.scenarios or every
    unknown = [n for n in names if n not in every]
    if unknown:
        ap.error("unknown scenario %s; choose from %s" % (unknown, ", ".join(every)))
    passed = 0
    for k, name in enumerate(names):
        if name in SCENARIOS:
            passed += run_scenario(name, args, args.seed + k)
        elif name in SENTINEL_SCENARIOS:
            passed += run_sentinel_scenario(name, SENTINEL_SCENARIOS[name], args, args.seed + k)
        else:
            passed += run_cluster_scenario(name, CLUSTER_SCENARIOS[name], args, args.seed + k)
    print("%d passed, %d failed" % (passed, len(names) - passed))
    sys.exit(0 if passed == len(names) else 1)


if __name__ == "__main__":
    main()
