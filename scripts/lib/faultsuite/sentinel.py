"""The fault suite's failover scenarios (see docs/operations.md): one master, two
replicas and three sentinels on loopback, a steady load while the master fails, and a checker
that can see loss.

Every request appends a unique marker (its request id) to its task's messages. The producer
queues each request on the master the sentinels name, and counts it queued only once a replica
has it (`WAIT 1`): otherwise it queues it again, under the same request id, after a failover, as a
careful producer would. A subscriber listens on every data node (a message published on the master
reaches the replicas' subscribers too), so that replies keep coming in through a failover.

*lost*: a marker whose 200 was published but that is not in the final task. *doubled*: a marker
present twice, one request id published at two revisions, or one (id, rev) of the change feed
under two request ids.
"""
import copy, os, random, shutil, signal, tempfile, threading, time, urllib.error, urllib.request

from .bridge import Bridge
from .checker import check_master, progress, unread, verdict
from .keys import BRIDGE_USER, GROUP, PREFIX, REQUESTS, bridge_url, task_key
from .listeners import NodeListener, Published, subscribe_until
from .resp import Redis, RedisError, text
from .servers import MASTER_NAME, Topology, wait_for
from .workload import marker_patch, request_fields, task_fields


class FailoverWatch(threading.Thread):
    """Follows every sentinel's events: `fence` changes when a failover starts, and `failing` holds
    until it ends. A WAIT that a replica answered says nothing once a failover has started: the
    replica that answered may not be the one promoted, and the old master keeps taking writes
    until the sentinels turn it into a replica (seconds after a graceful failover)."""

    STARTS = ("+try-failover",)
    ENDS = ("+switch-master", "+failover-end", "-failover-abort-not-elected", "-failover-abort-no-good-slave",
            "-failover-abort-slave-timeout", "+failover-end-for-timeout")

    def __init__(self, sentinel_ports):
        super().__init__(daemon=True)
        self.ports = sentinel_ports
        self.lock = threading.Lock()
        self.fence, self.failing_since, self.switches = 0, None, 0
        self.stop = threading.Event()

    def state(self):
        """(fence, failing): a failover that has gone on 30 s is taken as over."""
        with self.lock:
            failing = self.failing_since is not None and time.monotonic() - self.failing_since < 30
            return self.fence, failing

    def _event(self, channel):
        with self.lock:
            if channel in self.STARTS:
                self.fence += 1
                self.failing_since = time.monotonic()
            elif channel in self.ENDS:
                self.failing_since = None
                self.switches += channel == "+switch-master"

    def _follow(self, port):
        # Unknown what this sentinel said while it could not be heard: count it as a failover started.
        subscribe_until(port, self.STARTS + self.ENDS, lambda channel, _: self._event(channel), self.stop,
                        lambda: self._event(self.STARTS[0]))

    def run(self):
        for port in self.ports:
            threading.Thread(target=self._follow, args=(port,), daemon=True).start()
        self.stop.wait()


class Producer(threading.Thread):
    """Queues `rate` requests a second for `seconds` on the current master. A request counts as
    queued once a replica has it: a confirmer thread publishes a marker and asks `WAIT 1` on a
    connection of its own (the marker puts everything queued before it under the `WAIT`), so the
    producer itself never waits. A confirmation counts only if no failover started before it came
    back (see FailoverWatch). After a failover, what was not confirmed is queued again on the new
    master, under the same request id."""

    def __init__(self, topology, rate, seconds, tasks, seed):
        super().__init__(daemon=True)
        self.topology, self.rate, self.seconds, self.tasks = topology, rate, seconds, tasks
        self.watch = FailoverWatch(topology.sentinel_ports)
        self.rng = random.Random(seed)
        self.sent, self.task_of = {}, {}
        self.lock = threading.Lock()
        self.unconfirmed = {}  # rid -> (fields, the master it was queued on)
        self.conn, self.conn_port, self.switches, self.checked_at = None, None, 0, 0.0
        self.done = threading.Event()
        self.errors = 0

    def connect(self):
        if self.conn is None:
            port = self.topology.master()
            if port is None:
                raise ConnectionError("no master named")
            conn = Redis(port, timeout=2)
            if conn("ROLE")[0] != b"master":
                conn.close()
                raise ConnectionError("%d is not the master" % port)
            self.conn, self.conn_port = conn, port
        return self.conn

    def drop(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def follow(self):
        """Drops the connection when the sentinels name another master: right after a switch most
        of them may still name the old one (which keeps taking writes for seconds), so a switch
        event alone is not enough; the named master is checked again every 200 ms."""
        now = time.monotonic()
        if self.watch.switches != self.switches:
            self.switches = self.watch.switches
            self.drop()
        elif self.conn is not None and now - self.checked_at > 0.2:
            self.checked_at = now
            named = self.topology.master()
            if named is not None and named != self.conn_port:
                self.drop()

    def queue(self, rid, fields):
        try:
            self.follow()
            c = self.connect()
            with self.lock:
                # What a master that failed since never confirmed goes again first.
                again = [(r, f) for r, (f, port) in self.unconfirmed.items() if port != self.conn_port]
            for r, f in again:
                c("XADD", REQUESTS, "*", *f)
                with self.lock:
                    self.unconfirmed[r] = (f, self.conn_port)
            c("XADD", REQUESTS, "*", *fields)
            with self.lock:
                self.unconfirmed[rid] = (fields, self.conn_port)
        except (OSError, ConnectionError, RedisError):
            self.errors += 1
            with self.lock:
                self.unconfirmed.setdefault(rid, (fields, None))
            self.drop()

    def confirmer(self):
        """Confirms what was queued on the current master, every 50 ms, without holding the producer."""
        conn, port = None, None
        while not (self.done.is_set() and not self.unconfirmed):
            try:
                master = self.topology.master()
                if conn is None or port != master:
                    if conn:
                        conn.close()
                    conn, port = Redis(master, timeout=2), master
                fence, failing = self.watch.state()
                with self.lock:
                    snapshot = [r for r, (_, p) in self.unconfirmed.items() if p == port]
                conn("PUBLISH", PREFIX + ":faults-marker", "")
                if snapshot and not failing and conn("WAIT", 1, 100) >= 1 and self.watch.state() == (fence, False):
                    with self.lock:
                        for r in snapshot:
                            if self.unconfirmed.get(r, (None, None))[1] == port:
                                del self.unconfirmed[r]
            except (OSError, ConnectionError, RedisError, TypeError):
                if conn:
                    conn.close()
                conn = None
            time.sleep(0.05)

    def run(self):
        self.watch.start()
        confirmer = threading.Thread(target=self.confirmer, daemon=True)
        confirmer.start()
        start = time.monotonic()
        total = int(self.rate * self.seconds)
        for k in range(total):
            due = start + k / self.rate
            while time.monotonic() < due:
                time.sleep(min(0.001, max(0.0, due - time.monotonic())))
            rid = "s%06d" % k
            tid = "f%04d" % self.rng.randrange(self.tasks)
            fields = request_fields(tid, marker_patch(rid), rid)
            self.sent[rid] = time.monotonic()
            self.task_of[rid] = tid
            self.queue(rid, fields)
        # The rest, until every request is on a master a replica confirmed (bounded).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.follow()
            with self.lock:
                pending = [(r, f) for r, (f, p) in self.unconfirmed.items() if p != self.conn_port or self.conn is None]
                left = len(self.unconfirmed)
            if not left:
                break
            if pending:
                r, f = pending[0]
                self.queue(r, f)
            time.sleep(0.01)
        self.done.set()
        confirmer.join(5)
        self.watch.stop.set()


def run_sentinel_scenario(name, spec, args, seed):
    min_replicas, fault, expect_loss, min_seconds = spec
    if args.seconds < min_seconds:
        args = copy.copy(args)
        args.seconds = min_seconds
    directory = tempfile.mkdtemp(prefix="faults-%s-" % name, dir=args.workdir)
    topology = Topology(directory)
    bridge, listeners, passed = None, [], False
    try:
        topology.start()
        master = topology.master()
        r = Redis(master)
        list(r.pipeline([["HSET", task_key("f%04d" % i)] + task_fields(i) for i in range(args.tasks)]))
        r("XGROUP", "CREATE", REQUESTS, GROUP, "0", "MKSTREAM")
        r("WAIT", 2, 2000)
        published = Published()
        listeners = [NodeListener(port, published.sink) for port in topology.data_ports]
        for listener in listeners:
            listener.start()
        time.sleep(0.3)
        sentinels = ",".join("127.0.0.1:%d" % p for p in topology.sentinel_ports)
        env_url = bridge_url(1)  # the sentinels name the host and port; the URL gives the user
        bridge = Bridge(args.bridge, 1, os.path.join(directory, "bridge.log"), "failover",
                        extra=["--sentinel", sentinels, "--sentinel-master", MASTER_NAME, "--min-replicas", str(min_replicas)],
                        url=env_url)
        producer = Producer(topology, args.rate, args.seconds, args.tasks, seed)
        started = time.monotonic()
        producer.start()
        outcome = fault(topology, producer, bridge, args)
        producer.join(args.seconds + 60)
        # Drain: the group on the final master has nothing unread or pending.
        deadline = time.monotonic() + 60
        final, drained = None, False
        pending = lag = None
        while time.monotonic() < deadline:
            final = topology.master()
            try:
                _, pending, lag = progress(Redis(final, timeout=2))
                lag = unread(Redis(final, timeout=2))
            except (OSError, ConnectionError, RedisError, TypeError):
                pending, lag = None, None
            if pending == 0 and lag == 0 and not producer.unconfirmed:
                drained = True
                break
            time.sleep(0.1)
        if not drained:
            outcome.setdefault("problems", []).append(
                "not drained within 60 s: master %s, pending %s, lag %s, requests no replica confirmed %d"
                % (final, pending, lag, len(producer.unconfirmed)))
        time.sleep(1.0)
        alive = bridge.alive()
        status = bridge.stop()
        for listener in listeners:
            listener.stop.set()
        counts, problems = check_master(final, producer, published.replies, published.updates)
        problems += outcome.get("problems", [])
        if "quiet" in outcome:
            start, end = outcome["quiet"]
            seen = sum(1 for t in published.reply_times if start <= t <= end)
            if seen:
                outcome.setdefault("problems", []).append("%d replies were published while no replica could confirm them" % seen)
                problems.append("%d replies were published while no replica could confirm them" % seen)
        # The consumer backs off (100 ms doubling to 5 s) while Redis fails; thousands of retries
        # mean it does not, and hammers the sentinels while the master is down.
        passed = verdict(name, " with --min-replicas %d" % min_replicas, expect_loss, counts, problems, outcome, producer, published,
                         os.path.join(directory, "bridge.log"), alive, status, time.monotonic() - started, 10, directory, args)
        return passed
    finally:
        if bridge and bridge.alive():
            bridge.stop()
        for listener in listeners:
            listener.stop.set()
        topology.stop()
        if passed and not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


def after(fraction, args):
    time.sleep(args.seconds * fraction)


def wait_for_switch(topology, old, seconds=30):
    """Seconds until the sentinels name another master than `old`."""
    start = time.monotonic()
    wait_for(lambda: topology.master() not in (None, old), seconds, "a failover")
    return time.monotonic() - start


def kill_master(topology, producer, bridge, args):
    after(0.33, args)
    old = topology.master()
    topology.signal(old, signal.SIGKILL)
    took = wait_for_switch(topology, old)
    return {"what": "master killed (SIGKILL), failover in %.1f s" % took, "failover_seconds": took, "bounded": True}


def lagging_then_kill(topology, producer, bridge, args):
    after(0.33, args)
    old = topology.master()
    replicas = topology.replicas()
    for port in replicas:
        topology.signal(port, signal.SIGSTOP)
    time.sleep(1.5)
    topology.signal(old, signal.SIGKILL)
    for port in replicas:
        topology.signal(port, signal.SIGCONT)
    took = wait_for_switch(topology, old)
    return {"what": "replicas stalled 1.5 s, master killed, replicas resumed; failover in %.1f s" % took, "failover_seconds": took + 1.5}


def too_few_replicas(topology, producer, bridge, args):
    """Both replicas stalled: with --min-replicas 1 nothing may become visible meanwhile."""
    after(0.33, args)
    replicas = topology.replicas()
    for port in replicas:
        topology.signal(port, signal.SIGSTOP)
    time.sleep(1.5)  # past the last WAIT of what was in flight
    marker = time.monotonic()
    time.sleep(2.0)
    problems = []
    try:
        body = urllib.request.urlopen("http://127.0.0.1:%d/health/ready" % bridge.http, timeout=2).read()
        problems.append("readiness said ready while no replica could confirm: %s" % body[:200])
    except urllib.error.HTTPError as error:
        reasons = error.read().decode()
        if "replicas required" not in reasons:
            problems.append("readiness did not name the replicas: %s" % reasons[:200])
    except OSError as error:
        problems.append("readiness did not answer: %s" % error)
    stalled_until = time.monotonic()
    for port in replicas:
        topology.signal(port, signal.SIGCONT)
    return {"what": "both replicas stalled 3.5 s", "failover_seconds": 3.5, "problems": problems,
            "quiet": (marker, stalled_until)}


def graceful_failovers(topology, producer, bridge, args):
    done, count, longest = 0.0, 0, 0.0
    step = max(3.0, args.seconds / 5)
    while done + step < args.seconds:
        time.sleep(step)
        done += step
        old = topology.master()
        try:
            Redis(topology.sentinel_ports[count % 3], timeout=2)("SENTINEL", "FAILOVER", MASTER_NAME)
        except (OSError, ConnectionError, RedisError):
            continue
        count += 1
        try:
            longest = max(longest, wait_for_switch(topology, old, 15))
        except RuntimeError:
            longest = 15
    return {"what": "SENTINEL FAILOVER %d times, every %.0f s (the longest switch %.1f s)" % (count, step, longest),
            "failover_seconds": longest}


def old_master_back(topology, producer, bridge, args):
    after(0.25, args)
    old = topology.master()
    topology.signal(old, signal.SIGKILL)
    took = wait_for_switch(topology, old)
    topology.restart_as_was(old)
    # While it believes it is a master, and after: no connection of the bridge's may write to it.
    writes, deadline = set(), time.monotonic() + args.seconds * 0.5
    while time.monotonic() < deadline:
        try:
            clients = text(Redis(old, timeout=1)("CLIENT", "LIST"))
        except (OSError, ConnectionError, RedisError):
            time.sleep(0.05)
            continue
        for line in clients.splitlines():
            f = dict(kv.split("=", 1) for kv in line.split(" ") if "=" in kv)
            if f.get("user") == BRIDGE_USER and f.get("cmd") not in ("role", "auth", "NULL", "client|setname"):
                writes.add(f.get("cmd"))
        time.sleep(0.02)
    problems = ["the bridge ran %s on the old master" % sorted(writes)] if writes else []
    return {"what": "master killed, failover in %.1f s, the old master restarted as it was: the bridge ran nothing on it" % took
            if not writes else "master killed and restarted", "failover_seconds": took, "problems": problems}


SENTINEL_SCENARIOS = {
    # name: (--min-replicas, fault, whether the checker must see loss, the shortest load in seconds)
    "sentinel-kill": (1, kill_master, False, 0),
    "sentinel-lagging": (1, lagging_then_kill, False, 0),
    "sentinel-unprotected": (0, lagging_then_kill, True, 0),
    "sentinel-too-few": (1, too_few_replicas, False, 0),
    # At least four failovers: with two, a bridge without the failover fence went unnoticed (the
    # first failovers of a run rarely catch a commit in the old master's last seconds; 15 s at
    # 500/s caught 980 doubled).
    "sentinel-failover": (1, graceful_failovers, False, 15),
    "sentinel-old-master": (1, old_master_back, False, 0),
}
