"""Subscribers that collect what the bridge publishes, each on a connection of its own straight
to Redis (never through the proxy of the network scenarios), reconnecting whenever it fails."""
import json, socket, threading, time

from .keys import REPLIES, UPDATES
from .resp import Redis, RedisError, text


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


class Published:
    """What the listeners heard: every reply payload by request id (and when the first came), and
    every summary announced under an (id, rev)."""

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
                # An update's small properties: the same in every announcement of it that has
                # them (one announced again once the task moved on has none).
                if "summary" in message:
                    summary = json.dumps(message["summary"], sort_keys=True)
                    self.updates.setdefault((message.get("id"), message.get("rev")), set()).add(summary)


class NodeListener(threading.Thread):
    """Listens on the reply channel and the all-updates channel of one data node, reconnecting."""

    def __init__(self, port, sink):
        super().__init__(daemon=True)
        self.port, self.sink, self.stop = port, sink, threading.Event()

    def run(self):
        subscribe_until(self.port, (REPLIES, UPDATES), self.sink, self.stop)


def listen(port, sharded, sink, stop):
    """Subscribes to the reply channel on one node of a cluster (a classic message reaches every
    node; a shard channel's, the nodes of its shard), again whenever the connection fails, until
    `stop`."""
    if sharded:
        subscribe_until(port, (REPLIES,), sink, stop, command="SSUBSCRIBE", pause=0.2)
    else:
        subscribe_until(port, (REPLIES, UPDATES), sink, stop, pause=0.2)
