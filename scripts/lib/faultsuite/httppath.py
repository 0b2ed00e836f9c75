"""The HTTP path's scenario: clients send PATCH /task-status/{id} with X-Request-Id while Redis
misbehaves, as a careful client would: a 503 (Redis refused, or failed mid-update) or a broken
connection is repeated under the same X-Request-Id until it is answered 200.

On one Redis the bridge answers an HTTP update once it is committed and sends its change-feed
entry without waiting (one MULTI/EXEC, read with the next round trip); a transaction Redis
refused, or whose answer a broken connection lost, is sent again. So the checker asks, of the
final state:
- every request answered 200 (*unanswered* otherwise), and nothing else than 200 and 503
  (*failed*);
- every request's marker in its task once (*lost*, *doubled*), and each task's _rev 1 + its
  markers (*inconsistent*);
- every revision a request made in the change feed, under that request's id (*feed missing*),
  and no revision under two ids (*feed conflicting*); the same entry twice is allowed (at least
  once: a transaction whose answer was lost is sent again) and counted (*feed repeated*).

The faults: clients killed (CLIENT KILL), the feed refused for 1 s (the bridge's user loses XADD:
commits go through, their transactions are refused as queued, EXECABORT), memory full (1 s),
Redis killed (SIGKILL) and restarted on its AOF. The requests are paced over LOAD_SECONDS and
each fault starts at its second, on a thread of its own, so that each falls while requests flow;
one that comes when the load is over fails the scenario, and so do more repeated feed entries
than a twentieth of the requests.
"""
import http.client, json, os, random, shutil, signal, tempfile, threading, time

from .bridge import Bridge
from .checker import change_feed, events_of, marker_keys
from .keys import BRIDGE_USER, task_key
from .resp import RedisError, pairs, text
from .servers import Server, free_port
from .workload import compact, marker, task_fields

CLIENTS = 8
PATIENCE = 60.0  # seconds a request is repeated before it counts as unanswered


class Paced:
    """The requests in order, each due at start + k / rate: the load lasts a known time, so that
    every fault falls while requests flow."""

    def __init__(self, work, rate):
        self.work, self.rate = list(work), rate
        self.lock = threading.Lock()
        self.next, self.start = 0, None

    def pop(self):
        with self.lock:
            if self.next >= len(self.work):
                raise IndexError
            if self.start is None:
                self.start = time.monotonic()
            k = self.next
            self.next += 1
        due = self.start + k / self.rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return self.work[k]


class Client(threading.Thread):
    """Takes requests as they fall due and sends each until it is answered 200 (or PATIENCE runs
    out), over one keep-alive connection, opened again after it fails."""

    def __init__(self, port, work, outcome):
        super().__init__(daemon=True)
        self.port, self.work, self.outcome = port, work, outcome
        self.conn = None

    def send(self, tid, rid, body):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "application/json-patch+json", "X-SailPoint-Experimental": "true", "X-Request-Id": rid}
        self.conn.request("PATCH", "/task-status/" + tid, body=body, headers=headers)
        response = self.conn.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After")

    def run(self):
        while True:
            try:
                rid, tid, body = self.work.pop()
            except IndexError:
                return
            deadline, statuses = time.monotonic() + PATIENCE, []
            while time.monotonic() < deadline:
                try:
                    status, retry_after = self.send(tid, rid, body)
                except (OSError, http.client.HTTPException):
                    if self.conn:
                        self.conn.close()
                    self.conn = None
                    time.sleep(0.05)
                    continue
                statuses.append(status)
                if status != 503:
                    break
                time.sleep(min(1.0, float(retry_after or 1)) * random.uniform(0.2, 1.0))
            self.outcome.record(rid, statuses)


class Outcome:
    def __init__(self):
        self.lock = threading.Lock()
        self.final, self.repeated = {}, 0

    def record(self, rid, statuses):
        with self.lock:
            self.final[rid] = statuses[-1] if statuses else None
            self.repeated += max(0, len(statuses) - 1)

    def done(self):
        with self.lock:
            return len(self.final)


def refuse_feed(server, seconds=1.0):
    r = server.client()
    r("ACL", "SETUSER", BRIDGE_USER, "-xadd")
    time.sleep(seconds)
    r("ACL", "SETUSER", BRIDGE_USER, "+xadd")
    return "the feed refused for %.0f s (the bridge's user without XADD)" % seconds


def fill_memory(server):
    return server.fill_memory(1.0)


def kill_restart(server):
    server.kill(signal.SIGKILL)
    time.sleep(0.3)
    server.start()
    return "redis killed (SIGKILL) and restarted on its AOF"


# The load lasts LOAD_SECONDS (requests paced to fit; 750/s in the short form: a broken connection
# must catch transactions in flight); each fault starts at its second of it, on a thread of its
# own, and none overlaps the next.
LOAD_SECONDS = 4.0

# name: [(second of the load, fault(server))]
HTTP_SCENARIOS = {
    "http-faults": [(0.3, Server.kill_clients), (0.6, refuse_feed), (1.8, fill_memory), (3.0, kill_restart),
                    (3.5, Server.kill_clients)],
}


def check_http(r, work, outcome):
    """The checker's counts and problems (see the module's docstring)."""
    counts = dict.fromkeys(("unanswered", "failed", "lost", "doubled", "inconsistent", "feed missing",
                            "feed conflicting", "feed repeated"), 0)
    problems = []
    for rid, _, _ in work:
        status = outcome.final.get(rid)
        if status is None:
            counts["unanswered"] += 1
        elif status != 200:
            counts["failed"] += 1
            if len(problems) < 5:
                problems.append("%s answered %s" % (rid, status))
    copies = {}
    feed = change_feed(events_of(r), copies=copies)
    counts["feed repeated"] = sum(n - 1 for n in copies.values())
    # A repeat comes from a transaction whose answer a broken connection lost: a few per fault. A
    # bridge that sent every transaction twice would pass everything else.
    if counts["feed repeated"] > len(work) // 20:
        problems.append("%d change-feed entries repeated, more than a twentieth of the requests" % counts["feed repeated"])
    sent_to = {}
    for rid, tid, _ in work:
        sent_to.setdefault(tid, set()).add(rid)
    for tid, rids in sorted(sent_to.items()):
        h = pairs(r("HGETALL", task_key(tid)))
        markers = marker_keys(json.loads(text(h.get("messages", b"[]"))))
        seen = {}
        for m in markers:
            seen[m] = seen.get(m, 0) + 1
        counts["lost"] += len(rids - set(seen))
        counts["doubled"] += sum(n - 1 for n in seen.values())
        rev = int(h.get("_rev", b"0"))
        if rev != 1 + len(markers):
            counts["inconsistent"] += 1
            problems.append("%s: _rev %d with %d markers" % (tid, rev, len(markers)))
        in_feed, rev_of = set(), {}
        for k in range(2, rev + 1):
            ids = feed.get((tid, k), set())
            if not ids:
                counts["feed missing"] += 1
                if len(problems) < 10:
                    problems.append("%s rev %d is not in the change feed" % (tid, k))
            elif len(ids) > 1:
                counts["feed conflicting"] += 1
                problems.append("%s rev %d is in the change feed under %s" % (tid, k, sorted(ids)))
            in_feed |= ids
            for rid in ids:
                rev_of.setdefault(rid, []).append(k)
        for rid, revs in rev_of.items():
            if len(revs) > 1:
                counts["feed conflicting"] += 1
                problems.append("%s: %s is in the change feed at revisions %s" % (tid, rid, revs))
        if in_feed - set(seen):
            counts["feed conflicting"] += 1
            problems.append("%s: the change feed names updates the task does not hold: %s" % (tid, sorted(in_feed - set(seen))[:5]))
    return counts, problems


def run_http_scenario(name, faults, args, seed):
    directory = tempfile.mkdtemp(prefix="faults-%s-" % name, dir=args.workdir)
    server = Server(os.path.join(directory, "redis"), free_port())
    bridge, passed = None, False
    rng = random.Random(seed)
    work = [("h%06d" % k, "f%04d" % rng.randrange(args.tasks),
             compact([marker("h%06d" % k), {"op": "replace", "path": "/progress", "value": "step %d" % k}]))
            for k in range(args.requests)]
    try:
        server.start()
        r = server.client()
        list(r.pipeline([["HSET", task_key("f%04d" % i)] + task_fields(i) for i in range(args.tasks)]))
        bridge = Bridge(args.bridge, server.port, os.path.join(directory, "bridge.log"), "faults-http")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", bridge.http, timeout=1).request("GET", "/health/live")
                break
            except OSError:
                time.sleep(0.05)
        outcome = Outcome()
        paced = Paced(work, len(work) / LOAD_SECONDS)
        started = time.monotonic()
        clients = [Client(bridge.http, paced, outcome) for _ in range(CLIENTS)]
        for c in clients:
            c.start()
        injected, overlaps, threads = [], [], []

        def inject(fault):
            # Requests still to come when the fault starts: a fault on an idle bridge proves nothing.
            left = len(work) - outcome.done()
            try:
                injected.append(fault(server))
            except (OSError, ConnectionError, RedisError) as error:
                injected.append("fault failed: %s" % error)
            overlaps.append(left)

        for second, fault in faults:
            time.sleep(max(0.0, started + second - time.monotonic()))
            t = threading.Thread(target=inject, args=(fault,), daemon=True)
            t.start()
            threads.append(t)
        deadline = started + args.timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        while time.monotonic() < deadline and any(c.is_alive() for c in clients):
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        # An announcement refused last is sent again a second later.
        time.sleep(2.5)
        alive = bridge.alive()
        status = bridge.stop()
        counts, problems = check_http(server.client(), work, outcome)
        timed_out = any(c.is_alive() for c in clients)
        if timed_out:
            problems.append("not done within %d s" % args.timeout)
        if not alive:
            problems.append("the bridge exited during the run (see %s)" % directory)
        if status != 0:
            problems.append("the bridge stopped with status %s on SIGTERM" % status)
        if len(injected) != len(faults):
            problems.append("only %d of %d faults injected" % (len(injected), len(faults)))
        idle = [k for k, left in enumerate(overlaps) if left < CLIENTS]
        if idle:
            problems.append("faults %s came when the load was over: they tested nothing" % idle)
        bad = sum(n for k, n in counts.items() if k != "feed repeated") + (counts["feed repeated"] > len(work) // 20)
        passed = bad == 0 and alive and status == 0 and not timed_out and len(injected) == len(faults) and not idle
        print("%-16s %s  %d requests over HTTP (%d clients, paced over %.0f s, %d repeats after a 503 or a broken connection) in %.1f s; "
              "%s (requests still to come at each: %s); %s"
              % (name, "PASS" if passed else "FAIL", len(work), CLIENTS, LOAD_SECONDS, outcome.repeated, elapsed, "; ".join(injected),
                 ", ".join(str(n) for n in overlaps),
                 " ".join("%s %d" % (k, n) for k, n in counts.items())), flush=True)
        for problem in problems[:12]:
            print("    " + problem, flush=True)
        if not passed:
            print("    logs and data: %s" % directory, flush=True)
        return passed
    finally:
        if bridge and bridge.alive():
            bridge.stop()
        server.kill(signal.SIGTERM)
        if passed and not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
