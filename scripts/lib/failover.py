"""The fault suite's failover scenarios (see faults.py and docs/operations.md): one master, two
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
import copy, json, os, random, shutil, signal, subprocess, tempfile, threading, time

from faults import PREFIX, BRIDGE_USER, BRIDGE_PASSWORD, REPLIES, Redis, RedisError, Bridge, change_feed, free_port, pairs, progress, text, task_document

MASTER_NAME = "faultsmaster"


class Servers:
    """The redis-server processes of a topology, by port."""

    def __init__(self):
        self.procs = {}

    def signal(self, port, sig):
        proc = self.procs.get(port)
        if proc and proc.poll() is None:
            proc.send_signal(sig)
            if sig == signal.SIGKILL:
                proc.wait(timeout=30)

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()


class Topology(Servers):
    """Three data nodes (the first the master, the others its replicas) and three sentinels."""

    def __init__(self, directory):
        self.dir = directory
        self.data_ports = [free_port() for _ in range(3)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        super().__init__()

    def _data_args(self, port, replica_of=None):
        d = os.path.join(self.dir, "n%d" % port)
        os.makedirs(d, exist_ok=True)
        args = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--logfile", os.path.join(d, "redis.log"),
                "--user", BRIDGE_USER, "on", ">" + BRIDGE_PASSWORD, "~*", "&*", "+@all"]
        if replica_of:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        return args

    def start_data(self, port, replica_of=None):
        self.procs[port] = subprocess.Popen(self._data_args(port, replica_of), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: ping(port), 20, "redis-server on %d" % port)

    def start(self):
        master = self.data_ports[0]
        self.start_data(master)
        for port in self.data_ports[1:]:
            self.start_data(port, replica_of=master)
        for port in self.sentinel_ports:
            d = os.path.join(self.dir, "s%d" % port)
            os.makedirs(d, exist_ok=True)
            conf = os.path.join(d, "sentinel.conf")
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n" % (port, d, os.path.join(d, "sentinel.log")))
                f.write("sentinel monitor %s 127.0.0.1 %d 2\n" % (MASTER_NAME, master))
                f.write("sentinel down-after-milliseconds %s 1000\n" % MASTER_NAME)
                f.write("sentinel failover-timeout %s 5000\n" % MASTER_NAME)
            self.procs[port] = subprocess.Popen([shutil.which("redis-server") or "redis-server", conf, "--sentinel"],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: all(self.sentinel_master(p) == master for p in self.sentinel_ports), 20, "the sentinels")
        wait_for(lambda: replicas_online(master) == 2, 20, "the replicas")
        # The sentinels know the replicas before a failover can promote one.
        wait_for(lambda: all(known_replicas(p) == 2 for p in self.sentinel_ports), 20, "the sentinels' view of the replicas")

    def sentinel_master(self, port):
        try:
            r = Redis(port, timeout=1)
            reply = r("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
            r.close()
            return int(reply[1]) if reply else None
        except (OSError, ConnectionError, RedisError, ValueError, TypeError):
            return None

    def master(self):
        """The master most of the sentinels that answer name (during a failover the leader may
        name the old one for seconds after the others name the new one)."""
        votes = {}
        for port in self.sentinel_ports:
            m = self.sentinel_master(port)
            if m:
                votes[m] = votes.get(m, 0) + 1
        return max(votes, key=votes.get) if votes else None

    def replicas(self):
        m = self.master()
        return [p for p in self.data_ports if p != m]

    def restart_as_was(self, port):
        """Starts a killed node again as it was first started: the old master believes it is one."""
        self.procs[port] = subprocess.Popen(self._data_args(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: ping(port), 20, "redis-server on %d" % port)



def ping(port):
    try:
        r = Redis(port, timeout=1)
        ok = r("PING") == "PONG"
        r.close()
        return ok
    except (OSError, ConnectionError, RedisError):
        return False


def replicas_online(port):
    try:
        r = Redis(port, timeout=1)
        info = text(r("INFO", "replication"))
        r.close()
        return info.count("state=online")
    except (OSError, ConnectionError, RedisError):
        return 0


def known_replicas(sentinel_port):
    try:
        r = Redis(sentinel_port, timeout=1)
        reply = r("SENTINEL", "replicas", MASTER_NAME)
        r.close()
        return len(reply or [])
    except (OSError, ConnectionError, RedisError):
        return 0


def unread(r):
    """0 when the group has read up to the stream's last entry, else 1: the group's lag counter
    may not survive a failover."""
    last = pairs(r("XINFO", "STREAM", PREFIX + ":requests")).get("last-generated-id")
    for group in r("XINFO", "GROUPS", PREFIX + ":requests"):
        info = pairs(group)
        if text(info.get("name")) == PREFIX + "-bridge":
            return 0 if info.get("last-delivered-id") == last else 1
    return 1


def wait_for(check, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ConnectionError, RedisError):
            pass  # not up yet
        time.sleep(0.05)
    raise RuntimeError("%s did not get ready within %d s" % (what, seconds))


def subscribe_until(port, channels, on_message, stop, on_lost=None, command="SUBSCRIBE", pause=0.05):
    """Subscribes to `channels` on `port` and calls on_message(channel, payload) for each message
    until `stop` is set, subscribing again (after on_lost()) whenever the connection fails. With
    `command` SSUBSCRIBE, to shard channels: a node of another shard refuses (MOVED), and a
    subscription ends when its slot moves; both are tried again after `pause`."""
    while not stop.is_set():
        try:
            r = Redis(port, timeout=0.5)
            r.sock.sendall(Redis.encode([command, *channels]))
            for _ in channels:
                confirmation = r.read()
                if isinstance(confirmation, RedisError):
                    raise confirmation
            while not stop.is_set():
                try:
                    m = r.read()
                except OSError as error:
                    if "timed out" in str(error):
                        continue
                    raise
                if isinstance(m, list) and len(m) == 3 and m[0] in (b"message", b"smessage"):
                    on_message(text(m[1]), m[2])
                elif isinstance(m, list) and m and m[0] == b"sunsubscribe":
                    raise ConnectionError("the shard channel moved")
        except (OSError, ConnectionError, RedisError):
            if on_lost:
                on_lost()
            time.sleep(pause)


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
                c("XADD", PREFIX + ":requests", "*", *f)
                with self.lock:
                    self.unconfirmed[r] = (f, self.conn_port)
            c("XADD", PREFIX + ":requests", "*", *fields)
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
            patch = json.dumps([{"op": "add", "path": "/messages/-", "value": {"type": "INFO", "key": rid}}], separators=(",", ":"))
            fields = ["id", tid, "patch", patch, "request-id", rid, "reply-to", REPLIES, "x-sailpoint-experimental", "true"]
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


class NodeListener(threading.Thread):
    """Listens on the reply channel and the all-updates channel of one data node, reconnecting."""

    def __init__(self, port, sink):
        super().__init__(daemon=True)
        self.port, self.sink, self.stop = port, sink, threading.Event()

    def run(self):
        subscribe_until(self.port, (REPLIES, PREFIX + ":updates"), self.sink, self.stop)


def check(topology, producer, replies, updates, feed_master):
    """Loss and doubling, from what was published and what the final master holds."""
    r = Redis(feed_master)
    tasks = sorted(set(producer.task_of.values()))
    hashes = dict(zip(tasks, r.pipeline([["HGETALL", "%s:task:{%s}" % (PREFIX, t)] for t in tasks])))
    stored = dict(zip(producer.sent, r.pipeline([["GET", "%s:reply:{%s}:%s" % (PREFIX, producer.task_of[rid], rid)] for rid in producer.sent])))
    return judge(producer, replies, updates, hashes, stored, change_feed(r))


def judge(producer, replies, updates, hashes, stored, feed):
    """The marker checker, over what was published (`replies`: request id -> payloads; `updates`:
    (id, rev) -> tasks announced) and what Redis holds at the end (`hashes`: task id -> HGETALL;
    `stored`: request id -> stored reply; `feed`: (id, rev) -> request ids of the change feed).
    Every request of the load is valid: an answer but 200 is the bridge's failure."""
    counts = {"lost": 0, "doubled": 0, "unanswered": 0, "inconsistent": 0, "failed": 0}
    problems = []

    def note(kind, message):
        counts[kind] += 1
        if counts[kind] <= 3:
            problems.append(message)

    published_200, bodies_200 = {}, {}
    for rid, payloads in replies.items():
        for payload in payloads:
            reply = json.loads(payload)
            if reply.get("status") != 200:
                note("failed", "%s was answered %s: %s" % (rid, reply.get("status"), json.dumps(reply.get("body"))[:200]))
                continue
            published_200.setdefault(rid, set()).add(reply.get("rev"))
            bodies_200.setdefault(rid, set()).add(json.dumps(reply.get("body"), sort_keys=True))
    for rid, revs in published_200.items():
        if len(revs) > 1:
            note("doubled", "%s was answered 200 at revisions %s" % (rid, sorted(revs)))
        elif len(bodies_200[rid]) > 1:
            # Applied twice at the same revision (a failover lost the first commit): the two
            # answers differ (the time stamped in modified, at least).
            note("doubled", "%s was answered 200 twice at revision %s with different tasks" % (rid, sorted(revs)[0]))
    for (tid, rev), tasks in updates.items():
        if len(tasks) > 1:
            note("doubled", "%s rev %s was announced with %d different tasks" % (tid, rev, len(tasks)))
    markers = {}
    for tid, flat in hashes.items():
        fields = pairs(flat)
        keys = [m["key"] for m in json.loads(fields.get("messages", b"[]"))]
        for key in keys:
            markers[key] = markers.get(key, 0) + 1
        if int(fields.get("_rev", b"0")) != 1 + len(keys):
            note("inconsistent", "%s: _rev %s with %d markers" % (tid, text(fields.get("_rev")), len(keys)))
    for key, n in markers.items():
        if n > 1:
            note("doubled", "the marker of %s is in its task %d times" % (key, n))
    for rid in published_200:
        if rid not in markers:
            note("lost", "%s was answered 200 (rev %s) but its marker is not in %s" % (rid, sorted(published_200[rid]), producer.task_of.get(rid)))
    for rid in producer.sent:
        if rid not in replies and stored.get(rid) is None:
            note("unanswered", "%s has no reply, published or stored" % rid)
    revs_of = {}
    for (tid, rev), rids in feed.items():
        if len(rids) > 1:
            note("doubled", "the change feed has %s rev %s under %s" % (tid, rev, sorted(rids)))
        for rid in rids:
            revs_of.setdefault(rid, set()).add(rev)
    for rid, revs in revs_of.items():
        if len(revs) > 1:
            note("doubled", "the change feed announces %s at revisions %s" % (rid, sorted(revs)))
    return counts, problems


class Published:
    """What the listeners heard: every reply payload by request id (and when the first came), and
    every task announced under an (id, rev)."""

    def __init__(self):
        self.replies, self.updates, self.first_reply, self.reply_times = {}, {}, {}, []
        self.lock = threading.Lock()

    def sink(self, channel, payload):
        now = time.monotonic()
        try:
            message = json.loads(payload)
        except ValueError:
            return
        with self.lock:
            if channel == REPLIES:
                rid = message.get("requestId")
                self.replies.setdefault(rid, set()).add(payload)
                self.first_reply.setdefault(rid, now)
                self.reply_times.append(now)
            else:
                task = json.dumps(message.get("task"), sort_keys=True)
                self.updates.setdefault((message.get("id"), message.get("rev")), set()).add(task)


def verdict(name, headline, expect_loss, counts, problems, outcome, producer, published, bridge_log, alive, status, elapsed,
            retry_limit, directory, args):
    """Judges a load-and-fault scenario and prints its line: the checker's counts (loss expected or
    none of any kind), the slowest answer within the outcome's bound, the bridge alive, stopped
    with 0, and backing off (no more than `retry_limit` retries a second)."""
    with open(bridge_log, errors="replace") as log:
        retries = sum(1 for line in log if "trying the same entries again" in line)
    latencies = [published.first_reply[rid] - producer.sent[rid] for rid in producer.sent if rid in published.first_reply]
    slowest = max(latencies) if latencies else float("nan")
    # The bound the issues set for a killed master; after a graceful failover the replicas
    # resynchronise first, and nothing is answered before one confirms.
    bound = outcome.get("failover_seconds", 0) + 5 if outcome.get("bounded") else float("inf")
    too_slow = not expect_loss and latencies and slowest > bound
    if too_slow:
        problems.append("the slowest answer took %.1f s, more than the failover (%.1f s) plus 5 s" % (slowest, bound - 5))
    saw_loss = counts["lost"] + counts["doubled"] > 0
    ok = saw_loss if expect_loss else (not saw_loss and counts["unanswered"] == 0 and counts["inconsistent"] == 0
                                       and counts["failed"] == 0 and not too_slow and not outcome.get("problems"))
    busy = retries > retry_limit * elapsed
    passed = ok and alive and status == 0 and not busy
    if busy:
        problems.append("the bridge retried %d times in %.0f s: its back-off does not hold" % (retries, elapsed))
    if not alive:
        problems.append("the bridge exited during the run (see %s)" % directory)
    if status != 0:
        problems.append("the bridge stopped with status %s on SIGTERM" % status)
    label = "%s%s" % (name, " (the checker must see loss)" if expect_loss else "")
    print("%-16s %s  %d requests at %d/s over %.0f s%s; %s; lost %d doubled %d unanswered %d inconsistent %d failed %d; "
          "slowest answer %.2f s; producer re-queued after %d failures; bridge retries %d"
          % (label, "PASS" if passed else "FAIL", len(producer.sent), args.rate, elapsed, headline, outcome.get("what", "no fault"),
             counts["lost"], counts["doubled"], counts["unanswered"], counts["inconsistent"], counts["failed"], slowest,
             producer.errors, retries), flush=True)
    for problem in problems[:12]:
        print("    " + problem, flush=True)
    if not passed or args.keep:
        print("    logs and data: %s" % directory, flush=True)
    return passed


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
        list(r.pipeline([["HSET", "%s:task:{f%04d}" % (PREFIX, i)] + [x for kv in task_document(i).items() for x in kv]
                         for i in range(args.tasks)]))
        r("XGROUP", "CREATE", PREFIX + ":requests", PREFIX + "-bridge", "0", "MKSTREAM")
        r("WAIT", 2, 2000)
        published = Published()
        listeners = [NodeListener(port, published.sink) for port in topology.data_ports]
        for listener in listeners:
            listener.start()
        time.sleep(0.3)
        sentinels = ",".join("127.0.0.1:%d" % p for p in topology.sentinel_ports)
        env_url = "redis://%s:%s@127.0.0.1:1/0" % (BRIDGE_USER, BRIDGE_PASSWORD)
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
        counts, problems = check(topology, producer, published.replies, published.updates, final)
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
    import urllib.request
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
