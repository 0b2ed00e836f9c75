"""The suite's own Redis clients: RESP2 over one socket, and a small Redis Cluster client on top.

The suite must not depend on the code it checks, nor on anything pip installs: a client of a
hundred lines is enough for what a checker asks.
"""
import socket, time


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


def crc16(data):
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key):
    """Redis Cluster's slot of a key: CRC16-XMODEM of its hash tag, mod 16384."""
    b = key.encode() if isinstance(key, str) else key
    s = b.find(b"{")
    if s != -1:
        e = b.find(b"}", s + 1)
        if e > s + 1:
            b = b[s + 1:e]
    return crc16(b) % 16384


class ClusterClient:
    """A small cluster client over the nodes on `ports`: the slot map, one connection per node,
    MOVED, ASK and TRYAGAIN."""

    def __init__(self, ports):
        self.ports, self.map, self.conns = ports, [], {}

    def refresh(self):
        for port in self.ports:
            try:
                slots = self.conn(port)("CLUSTER", "SLOTS")
                self.map = [(s, e, int(m[1])) for s, e, m, *_ in slots]
                return
            except (OSError, ConnectionError, RedisError):
                self.drop(port)
        raise ConnectionError("no node gave the slot map")

    def conn(self, port):
        if port not in self.conns:
            self.conns[port] = Redis(port, timeout=3)
        return self.conns[port]

    def drop(self, port):
        c = self.conns.pop(port, None)
        if c:
            c.close()

    def port_of(self, key):
        if not self.map:
            self.refresh()
        slot = key_slot(key)
        return next(p for s, e, p in self.map if s <= slot <= e)

    def call(self, key, *args, attempts=50):
        asking = None
        for _ in range(attempts):
            port = asking or self.port_of(key)
            try:
                c = self.conn(port)
                if asking:
                    c.sock.sendall(Redis.encode(["ASKING"]) + Redis.encode(list(args)))
                    c.read()
                    reply = c.read()
                    if isinstance(reply, RedisError):
                        raise reply
                    return reply
                return c(*args)
            except RedisError as error:
                message = str(error)
                asking = None
                if message.startswith("MOVED"):
                    self.refresh()
                elif message.startswith("ASK"):
                    asking = int(message.split()[2].rsplit(":", 1)[1])
                elif message.split()[0] in ("TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN"):
                    time.sleep(0.1)
                else:
                    raise
            except (OSError, ConnectionError):
                self.drop(port)
                self.map = []
                time.sleep(0.1)
        raise ConnectionError("%s: no answer after %d attempts" % (args[0], attempts))

    def close(self):
        for port in list(self.conns):
            self.drop(port)
