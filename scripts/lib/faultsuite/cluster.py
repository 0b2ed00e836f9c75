"""The fault suite's Redis Cluster scenarios (see docs/operations.md): three masters
with a replica each on loopback, a bridge with `--redis-cluster --shards 8 --min-replicas 1`, a
steady load while the cluster misbehaves, and the marker checker of the failover scenarios.

Every request appends a unique marker (its request id) to its task's messages and is queued on
its task's shard stream (contract section 7). The producer counts a request queued only once the
replica of the master that took it has it (a marker write and `WAIT 1` on a connection of its
own); otherwise it queues it again, under the same request id, on the shard's master of the
moment, as a careful producer would.

*lost*: a marker whose 200 was published but that is not in the final task. *doubled*: a marker
present twice, one request id answered 200 at two revisions (or twice at one with different
tasks), or one (id, rev) of the change feeds under two request ids.
"""
import copy, os, random, shutil, signal, subprocess, tempfile, threading, time

from .bridge import Bridge
from .checker import check_cluster, cluster_drained, verdict
from .keys import BRIDGE_USER, BRIDGE_PASSWORD, GROUP, bridge_url, shard_stream, task_key
from .listeners import Published, listen
from .resp import ClusterClient, Redis, RedisError, key_slot, text
from .servers import ClusterNodes, wait_for
from .workload import marker_patch, request_fields, task_fields

SHARDS = 8


def stream_of(tid):
    """The shard stream a task's requests go to (contract section 8)."""
    return shard_stream(key_slot(task_key(tid)) % SHARDS)


class Producer(threading.Thread):
    """Queues `rate` requests a second for `seconds`, each on its task's shard stream; a request
    counts as queued once the replica of the master that took it has it; what is not confirmed
    when that master fails (or stops being one) is queued again, under the same request id."""

    def __init__(self, nodes, rate, seconds, tasks, seed):
        super().__init__(daemon=True)
        self.nodes, self.rate, self.seconds, self.tasks = nodes, rate, seconds, tasks
        self.cluster = ClusterClient(nodes.ports)
        self.rng = random.Random(seed)
        self.sent, self.task_of = {}, {}
        self.lock = threading.Lock()
        self.unconfirmed = {}  # rid -> (fields, the port that took it, when)
        self.queuing = threading.Lock()  # the producer and the confirmer share the connections
        self.done = threading.Event()
        self.errors = 0

    def queue(self, rid, fields):
        with self.queuing:
            self._queue(rid, fields)

    def _queue(self, rid, fields):
        stream = stream_of(self.task_of[rid])
        try:
            port = self.cluster.port_of(stream)
            self.cluster.call(stream, "XADD", stream, "*", *fields, attempts=3)
            with self.lock:
                self.unconfirmed[rid] = (fields, port, time.monotonic())
        except (OSError, ConnectionError, RedisError, StopIteration):
            self.errors += 1
            with self.lock:
                self.unconfirmed[rid] = (fields, None, time.monotonic())
            self.cluster.map = []

    def confirmer(self):
        conns, markers = {}, {}
        while not (self.done.is_set() and not self.unconfirmed):
            with self.lock:
                ports = {p for _, p, _ in self.unconfirmed.values() if p is not None}
            masters = set(self.nodes.masters())
            for port in ports:
                try:
                    if port not in masters:
                        raise ConnectionError("%d is no longer a master" % port)
                    if port not in conns:
                        conns[port] = Redis(port, timeout=2)
                        conns[port]("AUTH", BRIDGE_USER, BRIDGE_PASSWORD)
                    if port not in markers:
                        with self.queuing:
                            self.cluster.refresh()
                            found = [k for k in range(2000) if self.cluster.port_of("faults:marker:{m%d}" % k) == port]
                        if not found:
                            raise ConnectionError("%d serves no slots" % port)
                        markers[port] = "faults:marker:{m%d}" % found[0]
                    with self.lock:
                        snapshot = [r for r, (_, p, _) in self.unconfirmed.items() if p == port]
                    conns[port]("SET", markers[port], "1")
                    if snapshot and conns[port]("WAIT", 1, 100) >= 1:
                        with self.lock:
                            for r in snapshot:
                                if self.unconfirmed.get(r, (None, None, 0))[1] == port:
                                    del self.unconfirmed[r]
                except (OSError, ConnectionError, RedisError, StopIteration, TypeError):
                    c = conns.pop(port, None)
                    if c:
                        c.close()
                    markers.pop(port, None)
                    # Not confirmed by a replica of a master that is gone: queued again.
                    with self.lock:
                        again = [(r, f) for r, (f, p, _) in self.unconfirmed.items() if p == port]
                        for r, f in again:
                            self.unconfirmed[r] = (f, None, time.monotonic())
            with self.lock:
                lost = [(r, f) for r, (f, p, _) in self.unconfirmed.items() if p is None]
            for r, f in lost[:200]:
                self.queue(r, f)
            time.sleep(0.05)

    def run(self):
        confirmer = threading.Thread(target=self.confirmer, daemon=True)
        confirmer.start()
        start = time.monotonic()
        for k in range(int(self.rate * self.seconds)):
            due = start + k / self.rate
            while time.monotonic() < due:
                time.sleep(min(0.001, max(0.0, due - time.monotonic())))
            rid = "c%06d" % k
            tid = "f%04d" % self.rng.randrange(self.tasks)
            self.sent[rid] = time.monotonic()
            self.task_of[rid] = tid
            self.queue(rid, request_fields(tid, marker_patch(rid), rid))
        deadline = time.monotonic() + 60
        while self.unconfirmed and time.monotonic() < deadline:
            time.sleep(0.05)
        self.done.set()
        confirmer.join(5)


def run_cluster_scenario(name, spec, args, seed):
    try:
        return _run_cluster_scenario(name, spec, args, seed)
    except (OSError, ConnectionError, RedisError, RuntimeError, subprocess.CalledProcessError) as error:
        print("%-16s FAIL  the scenario could not run: %s" % (name, error), flush=True)
        return False


def _run_cluster_scenario(name, spec, args, seed):
    min_replicas, pubsub, fault, expect_loss, min_seconds = spec
    if args.seconds < min_seconds:
        args = copy.copy(args)
        args.seconds = min_seconds
    directory = tempfile.mkdtemp(prefix="faults-%s-" % name, dir=args.workdir)
    nodes = ClusterNodes(directory)
    bridge, stop, passed = None, threading.Event(), False
    try:
        nodes.start()
        cluster = ClusterClient(nodes.ports)
        for i in range(args.tasks):
            key = task_key("f%04d" % i)
            cluster.call(key, "HSET", key, *task_fields(i))
        for k in range(SHARDS):
            stream = shard_stream(k)
            cluster.call(stream, "XGROUP", "CREATE", stream, GROUP, "0", "MKSTREAM")
        for master in nodes.masters():
            Redis(master)("WAIT", 1, 2000)
        published = Published()

        for port in nodes.ports:
            threading.Thread(target=listen, args=(port, pubsub == "sharded", published.sink, stop), daemon=True).start()
        time.sleep(0.3)
        seeds = ",".join("127.0.0.1:%d" % p for p in nodes.ports[:3])
        bridge = Bridge(args.bridge, 1, os.path.join(directory, "bridge.log"), "cluster-faults",
                        extra=["--redis-cluster", seeds, "--shards", str(SHARDS), "--pubsub", pubsub, "--min-replicas", str(min_replicas)],
                        url=bridge_url(1))  # the seeds name the nodes; the URL gives the user
        producer = Producer(nodes, args.rate, args.seconds, args.tasks, seed)
        started = time.monotonic()
        producer.start()
        outcome = fault(nodes, cluster, args)
        producer.join(args.seconds + 90)
        reader = ClusterClient(nodes.ports)
        deadline, done = time.monotonic() + 60, False
        while time.monotonic() < deadline:
            try:
                if not producer.unconfirmed and cluster_drained(reader, SHARDS):
                    done = True
                    break
            except (OSError, ConnectionError, RedisError, StopIteration, TypeError):
                reader = ClusterClient(nodes.ports)
            time.sleep(0.2)
        if not done:
            outcome.setdefault("problems", []).append(
                "not drained within 60 s (requests no replica confirmed: %d)" % len(producer.unconfirmed))
        problems = list(outcome.get("problems", []))
        time.sleep(1.0)
        alive = bridge.alive()
        status = bridge.stop()
        stop.set()
        counts, found = check_cluster(reader, SHARDS, producer, published.replies, published.updates)
        # The consumers (one per shard) back off while the cluster fails: thousands of retries mean they do not.
        passed = verdict(name, ", 3 masters, --shards %d --pubsub %s --min-replicas %d" % (SHARDS, pubsub, min_replicas), expect_loss,
                         counts, found + problems, outcome, producer, published, os.path.join(directory, "bridge.log"), alive, status,
                         time.monotonic() - started, 10 * SHARDS, directory, args)
        return passed
    finally:
        stop.set()
        if bridge and bridge.alive():
            bridge.stop()
        nodes.stop()
        if passed and not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


def busiest_master(nodes, cluster):
    """The master holding the most shard streams."""
    counts = {}
    for k in range(SHARDS):
        port = cluster.port_of(shard_stream(k))
        counts[port] = counts.get(port, 0) + 1
    return max(counts, key=counts.get)


def wait_promoted(nodes, replica, seconds=30):
    start = time.monotonic()
    wait_for(lambda: replica in nodes.roles(replica)[0] and "cluster_state:ok" in text(Redis(replica, timeout=1)("CLUSTER", "INFO")),
             seconds, "the promotion of %d" % replica)
    return time.monotonic() - start


def kill_master(nodes, cluster, args):
    time.sleep(args.seconds * 0.33)
    master = busiest_master(nodes, cluster)
    replica = nodes.replica_of(master)
    start = time.monotonic()
    nodes.signal(master, signal.SIGKILL)
    took = wait_promoted(nodes, replica)
    nodes.restart(master)
    wait_for(lambda: nodes.replica_online(replica), 30, "the old master's return as a replica")
    # With --min-replicas 1 the shard can confirm nothing until its master has a replica again.
    back = time.monotonic() - start
    return {"what": "a master killed (SIGKILL), its replica promoted in %.1f s, the old one back as its replica after %.1f s"
            % (took, back), "failover_seconds": back, "bounded": True}


def lagging_then_kill(nodes, cluster, args):
    time.sleep(args.seconds * 0.33)
    master = busiest_master(nodes, cluster)
    replica = nodes.replica_of(master)
    nodes.signal(replica, signal.SIGSTOP)
    time.sleep(1.5)
    nodes.signal(master, signal.SIGKILL)
    nodes.signal(replica, signal.SIGCONT)
    took = wait_promoted(nodes, replica)
    nodes.restart(master)
    wait_for(lambda: nodes.replica_online(replica), 30, "the old master's return as a replica")
    return {"what": "a replica stalled 1.5 s, its master killed, the replica resumed and promoted in %.1f s" % took,
            "failover_seconds": took + 1.5}


def graceful_failovers(nodes, cluster, args):
    count, longest, step = 0, 0.0, max(3.0, args.seconds / 5)
    done = 0.0
    while done + step < args.seconds:
        time.sleep(step)
        done += step
        masters = sorted(nodes.masters())
        if not masters:
            continue
        master = masters[count % len(masters)]
        try:
            replica = nodes.replica_of(master)
            Redis(replica, timeout=2)("CLUSTER", "FAILOVER")
            longest = max(longest, wait_promoted(nodes, replica, 15))
            count += 1
        except (OSError, ConnectionError, RedisError, RuntimeError, TypeError):
            continue
    return {"what": "CLUSTER FAILOVER %d times, every %.0f s (the longest switch %.1f s)" % (count, step, longest),
            "failover_seconds": longest}


def node_id(port):
    return text(Redis(port, timeout=2)("CLUSTER", "MYID"))


def migrate_slot(nodes, slot, source, target, pause):
    """Moves one slot as redis-cli --cluster reshard does, holding it MIGRATING for `pause`
    seconds first (keys not moved yet answer on the source, new ones ASK the target, commands
    over both TRYAGAIN)."""
    src, tgt = Redis(source, timeout=5), Redis(target, timeout=5)
    tgt("CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(source))
    src("CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(target))
    time.sleep(pause)
    moved = 0
    while True:
        keys = src("CLUSTER", "GETKEYSINSLOT", slot, 100)
        if not keys:
            break
        src("MIGRATE", "127.0.0.1", target, "", 0, 5000, "AUTH2", BRIDGE_USER, BRIDGE_PASSWORD, "KEYS", *keys)
        moved += len(keys)
        time.sleep(pause / 4)
    for port in nodes.masters():
        Redis(port, timeout=5)("CLUSTER", "SETSLOT", slot, "NODE", node_id(target))
    return moved


def migrations(nodes, cluster, args):
    """A shard stream's slot, then a busy task's slot, moved to another master mid-load."""
    time.sleep(args.seconds * 0.25)
    stream = shard_stream(0)
    task = task_key("f0000")
    done = []
    for key in (stream, task):
        cluster.refresh()
        source = cluster.port_of(key)
        target = next(p for p in sorted(nodes.masters()) if p != source)
        moved = migrate_slot(nodes, key_slot(key), source, target, 1.0)
        done.append("slot %d (%s, %d keys) %d -> %d" % (key_slot(key), key, moved, source, target))
        time.sleep(args.seconds * 0.2)
    return {"what": "migrated " + "; ".join(done)}


def client_kills(nodes, cluster, args):
    kills = 0
    for _ in range(4):
        time.sleep(args.seconds / 5)
        for port in nodes.masters():
            try:
                kills += Redis(port, timeout=2)("CLIENT", "KILL", "USER", BRIDGE_USER)
            except (OSError, ConnectionError, RedisError):
                pass
    return {"what": "CLIENT KILL USER %s on every master 4 times (%d connections)" % (BRIDGE_USER, kills)}


CLUSTER_SCENARIOS = {
    # name: (--min-replicas, --pubsub, fault, whether the checker must see loss, the shortest load in seconds)
    "cluster-kill": (1, "sharded", kill_master, False, 0),
    "cluster-lagging": (1, "classic", lagging_then_kill, False, 0),
    "cluster-unprotected": (0, "classic", lagging_then_kill, True, 0),
    # At least four failovers, as sentinel-failover.
    "cluster-failover": (1, "sharded", graceful_failovers, False, 15),
    "cluster-migrate": (1, "sharded", migrations, False, 0),
    "cluster-client-kill": (1, "classic", client_kills, False, 0),
}

