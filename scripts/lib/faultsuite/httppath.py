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

The faults: clients killed (CLIENT KILL), the feed refused for 2.5 s (the bridge's user loses XADD:
commits go through, their transactions are refused as queued, EXECABORT), memory full (3 s),
Redis killed (SIGKILL) and restarted on its AOF.
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


class Client(threading.Thread):
    """Takes requests from the shared list and sends each until it is answered 200 (or PATIENCE
    runs out), over one keep-alive connection, opened again after it fails."""

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


def refuse_feed(server):
    r = server.client()
    r("ACL", "SETUSER", BRIDGE_USER, "-xadd")
    time.sleep(2.5)
    r("ACL", "SETUSER", BRIDGE_USER, "+xadd")
    return "the feed refused for 2.5 s (the bridge's user without XADD)"


def kill_restart(server):
    server.kill(signal.SIGKILL)
    time.sleep(0.3)
    server.start()
    return "redis killed (SIGKILL) and restarted on its AOF"


# name: [(fraction of the requests answered, fault(server))]
HTTP_SCENARIOS = {
    "http-faults": [(0.15, Server.kill_clients), (0.3, refuse_feed), (0.5, Server.fill_memory), (0.7, kill_restart),
                    (0.85, Server.kill_clients)],
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
        in_feed = set()
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
        queue = list(reversed(work))
        started = time.monotonic()
        clients = [Client(bridge.http, queue, outcome) for _ in range(CLIENTS)]
        for c in clients:
            c.start()
        injected, pending = [], list(faults)
        deadline = started + args.timeout
        while time.monotonic() < deadline and (pending or any(c.is_alive() for c in clients)):
            if pending and outcome.done() >= pending[0][0] * len(work):
                _, fault = pending.pop(0)
                try:
                    injected.append(fault(server))
                except (OSError, ConnectionError, RedisError) as error:
                    injected.append("fault failed: %s" % error)
                continue
            time.sleep(0.005)
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
        bad = sum(n for k, n in counts.items() if k != "feed repeated")
        passed = bad == 0 and alive and status == 0 and not timed_out and len(injected) == len(faults)
        print("%-16s %s  %d requests over HTTP (%d clients, %d repeats after a 503 or a broken connection) in %.1f s; %s; %s"
              % (name, "PASS" if passed else "FAIL", len(work), CLIENTS, outcome.repeated, elapsed, "; ".join(injected),
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
