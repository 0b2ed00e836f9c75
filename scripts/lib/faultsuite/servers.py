"""The redis-server processes a scenario runs: one node with AOF, a master with two replicas and
three sentinels, a Redis Cluster of three masters with a replica each. All on loopback, on free
ports, each in a directory of its own (scripts/faults finds leftovers by working directory)."""
import os, shutil, signal, socket, subprocess, time

from .keys import acl_user_args
from .resp import Redis, RedisError, pairs, text

REDIS_SERVER = shutil.which("redis-server") or "redis-server"
MASTER_NAME = "faultsmaster"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cluster_port():
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port + 10000 > 65535:
            continue
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
        finally:
            t.close()
    raise RuntimeError("no free port pair")


def cluster_ports(count):
    """Free ports whose cluster bus ports (port + 10000) are free too, none another's bus port."""
    ports = []
    for _ in range(100 * count):
        if len(ports) == count:
            return ports
        port = cluster_port()
        if port not in ports and all(abs(port - p) != 10000 for p in ports):
            ports.append(port)
    raise RuntimeError("no %d free port pairs" % count)


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


def ping(port):
    try:
        r = Redis(port, timeout=1)
        ok = r("PING") == "PONG"
        r.close()
        return ok
    except (OSError, ConnectionError, RedisError):
        return False


def start_plain(directory):
    """A private redis-server on a free loopback port without persistence, as the benchmarks
    run one: (process, port), once it answers PING."""
    port = free_port()
    process = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: ping(port), 10, "redis-server on port %d" % port)
    except RuntimeError:
        process.terminate()
        process.wait(timeout=10)
        raise
    return process, port


def replicas_online(port):
    try:
        r = Redis(port, timeout=1)
        info = text(r("INFO", "replication"))
        r.close()
        return info.count("state=online")
    except (OSError, ConnectionError, RedisError):
        return 0


class Server:
    """A redis-server with AOF (appendfsync always) and DEBUG enabled; the bridge's user can be
    kept off while the suite's subscriber comes back after a restart, so that no reply is
    published before anyone listens."""

    def __init__(self, directory, port):
        self.dir, self.port, self.proc = directory, port, None

    def start(self, bridge_user_on=True):
        os.makedirs(self.dir, exist_ok=True)
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--enable-debug-command", "local", "--logfile", os.path.join(self.dir, "redis.log")]
            + acl_user_args("on" if bridge_user_on else "off"),
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

    def fill_memory(self, seconds=3.0):
        """maxmemory just below the memory in use for `seconds` (noeviction): writes are refused."""
        r = self.client()
        used = int(pairs([x for line in text(r("INFO", "memory")).splitlines() if ":" in line
                          for x in line.split(":", 1)]).get("used_memory", b"1"))
        r("CONFIG", "SET", "maxmemory-policy", "noeviction")
        r("CONFIG", "SET", "maxmemory", str(max(1, used - 1024 * 1024)))
        time.sleep(seconds)
        r("CONFIG", "SET", "maxmemory", "0")
        return "maxmemory below used memory for %.0f s" % seconds

    def kill_clients(self):
        return "CLIENT KILL TYPE normal: %s clients" % self.client()("CLIENT", "KILL", "TYPE", "normal")


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
        args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--logfile", os.path.join(d, "redis.log")]
        args += acl_user_args()
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
            self.procs[port] = subprocess.Popen([REDIS_SERVER, conf, "--sentinel"],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: all(self.sentinel_master(p) == master for p in self.sentinel_ports), 20, "the sentinels")
        wait_for(lambda: replicas_online(master) == 2, 20, "the replicas")
        # The sentinels know the replicas before a failover can promote one.
        wait_for(lambda: all(self.known_replicas(p) == 2 for p in self.sentinel_ports), 20, "the sentinels' view of the replicas")

    def sentinel_master(self, port):
        try:
            r = Redis(port, timeout=1)
            reply = r("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
            r.close()
            return int(reply[1]) if reply else None
        except (OSError, ConnectionError, RedisError, ValueError, TypeError):
            return None

    @staticmethod
    def known_replicas(sentinel_port):
        try:
            r = Redis(sentinel_port, timeout=1)
            reply = r("SENTINEL", "replicas", MASTER_NAME)
            r.close()
            return len(reply or [])
        except (OSError, ConnectionError, RedisError):
            return 0

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


class ClusterNodes(Servers):
    """Six nodes: three masters, a replica each (AOF everysec, the bridge's ACL user)."""

    def __init__(self, directory):
        super().__init__()
        self.dir, self.ports = directory, cluster_ports(6)

    def _args(self, port):
        d = os.path.join(self.dir, "n%d" % port)
        os.makedirs(d, exist_ok=True)
        return [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--logfile", os.path.join(d, "redis.log")] + acl_user_args()

    def start(self):
        for port in self.ports:
            self.procs[port] = subprocess.Popen(self._args(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in self.ports:
            wait_for(lambda: Redis(port, timeout=1)("PING") == "PONG", 20, "redis-server on %d" % port)
        subprocess.run(["redis-cli", "--cluster", "create"] + ["127.0.0.1:%d" % p for p in self.ports] +
                       ["--cluster-replicas", "1", "--cluster-yes"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def ready():
            for port in self.ports:
                r = Redis(port, timeout=1)
                ok = "cluster_state:ok" in text(r("CLUSTER", "INFO")) and len(self.roles(port, r)[1]) == 3
                r.close()
                if not ok:
                    return False
            return all(self.replica_online(m) for m in self.masters())
        wait_for(ready, 40, "the cluster")

    def roles(self, port=None, conn=None):
        """(masters, replicas) as the node on `port` (any live one) sees them, by port."""
        for p in ([port] if port else []) + self.ports:
            try:
                r = conn or Redis(p, timeout=1)
                nodes = text(r("CLUSTER", "NODES"))
                masters, replicas = [], []
                for line in nodes.splitlines():
                    parts = line.split()
                    node_port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
                    if "fail" in parts[2] or "noaddr" in parts[2]:
                        continue
                    (masters if "master" in parts[2] else replicas).append(node_port)
                return masters, replicas
            except (OSError, ConnectionError, RedisError, ValueError, IndexError):
                continue
        return [], []

    def masters(self):
        return self.roles()[0]

    def replica_online(self, master):
        try:
            info = text(Redis(master, timeout=1)("INFO", "replication"))
            return "state=online" in info
        except (OSError, ConnectionError, RedisError):
            return False

    def replica_of(self, master):
        r = Redis(master, timeout=1)
        info = text(r("INFO", "replication"))
        for line in info.splitlines():
            if line.startswith("slave0:"):
                return int(dict(kv.split("=", 1) for kv in line.split(":", 1)[1].split(","))["port"])
        return None

    def restart(self, port):
        """Starts a killed node again: it rejoins as a replica of the master that replaced it, so
        that the shard has a replica again (a master without one confirms nothing)."""
        self.procs[port] = subprocess.Popen(self._args(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: Redis(port, timeout=1)("PING") == "PONG", 20, "redis-server on %d" % port)
