"""A loopback TCP proxy between the bridge and Redis that misbehaves on demand: the network
faults that Redis itself cannot show (a server that stops answering without closing, a reply that
arrives half, an answer that comes late).

One thread runs a selector loop over every socket; the scenario's thread asks for a fault through
a method, which the loop carries out between two of its steps, so that no fault lands halfway
through forwarding a chunk. Each accepted connection (a *link*) has two flows: up (client to
Redis) and down (Redis to client). A flow reads what its source sends into a queue of chunks,
each due at the time it was read plus the latency, and writes the chunks that are due and not
held to its destination, in order.

Faults:
- pause(): neither flow forwards (new connections are accepted and paused too); what arrives is
  buffered. resume() sends it on, as a network that comes back delivers what the kernels kept
  retransmitting: what the client sent reaches Redis even if the client has closed since (it
  closed with a FIN after its data, and TCP delivers both), and what Redis sent reaches the client
  only if the client is still there.
- hold_replies(): only the down flows stop; commands still reach Redis and run, their answers
  wait. release_replies() delivers them to the clients that are still connected.
  Both can wait for a command: pause(when="EVALSHA") starts the pause as a client sends one, just
  before it is forwarded (so that it is caught in the pause), hold_replies(when="EVALSHA") just
  before it reaches Redis (so that it runs and its answer is held). While paused or holding, the
  proxy counts the commands named `count` (the constructor's) that clients send.
- reset_all(): every link closed abortively on both sides (SO_LINGER 0: an RST, no FIN).
- cut_next_reply(): each open link's next chunk from Redis is cut in half; the client gets the
  first half, then both sides are reset.
- set_latency(s): every chunk read from now on, either way, is forwarded s seconds later.
- blackhole(): every link open now goes silent for good: nothing more forwarded either way, no
  close propagated, the sockets kept open until the proxy stops (as a peer behind a dead route).
  What the client sends is read and thrown away, so the log can say when the client gave up.
  Connections made afterwards work. (TCP keepalive cannot see this: the proxy's kernel answers
  its probes. Only the client's own timeouts can.)

Loopback only. Every buffer is bounded (a flow stops reading past MAX_BUFFERED), every wait of the
loop is at most 50 ms, and stop() closes every socket and ends the thread.
"""
import collections, errno, selectors, socket, struct, threading, time

MAX_BUFFERED = 64 << 20
CHUNK = 1 << 16


def resp_name(command):
    """A command's name as a client sends it: a RESP bulk string."""
    name = command.encode() if isinstance(command, str) else command
    return b"$%d\r\n%s\r\n" % (len(name), name)


class Flow:
    """One direction of a link: chunks read from `src`, waiting until due, then written to `dst`."""

    def __init__(self, direction, src, dst):
        self.direction, self.src, self.dst = direction, src, dst
        self.queue = collections.deque()  # [due, bytes]
        self.out = bytearray()  # due and released, not yet accepted by dst's kernel
        self.last_due = 0.0
        self.eof = False  # src sent its last byte (or failed)
        self.dead = False  # dst cannot take more: what is left is dropped
        self.shut = False  # dst was told (SHUT_WR) that no more comes
        self.read = self.written = self.dropped = 0

    def buffered(self):
        return len(self.out) + sum(len(c[1]) for c in self.queue)

    def drop(self):
        self.dropped += self.buffered()
        self.queue.clear()
        self.out.clear()

    def finished(self):
        return self.eof and (self.dead or (not self.queue and not self.out))


class Link:
    def __init__(self, number, client, server, opened):
        self.number, self.client, self.server, self.opened = number, client, server, opened
        self.up = Flow("up", client, server)
        self.down = Flow("down", server, client)
        self.state = "open"  # open, blackholed, reset, cut, closed
        self.cut_armed = False  # the next chunk from Redis is to be cut
        self.reset_when_sent = False  # reset once the half chunk is out
        self.ended = None  # when it was closed or reset
        self.client_gone = None  # when the client closed a blackholed link
        self.how = ""
        self.counted = 0  # commands named `count` sent while paused or holding

    def flow_from(self, sock):
        return self.up if sock is self.client else self.down


class Proxy:
    def __init__(self, target_port, log=None, count="EVALSHA"):
        self.target = target_port
        self.started = time.monotonic()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.links = []
        self.events = []  # (seconds since start, what happened), for the log
        self.log_path = log
        self.paused = self.holding = False
        self.trigger = None  # ("pause" or "hold", the bytes of a command) that starts it
        self.pattern = resp_name(count)
        self.latency = 0.0
        self.counts = collections.Counter()
        self.error = None
        self._selector = selectors.DefaultSelector()
        self._registered = {}  # socket -> (mask, link)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._requests = collections.deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="proxy-%d" % self.port, daemon=True)
        self._thread.start()

    # -- what a scenario asks for (each runs on the loop's thread; returns what it did)

    def pause(self, when=None):
        return self._ask(self._arm, "pause", when) if when else self._ask(self._pause, True)

    def resume(self):
        return self._ask(self._pause, False)

    def hold_replies(self, when=None):
        return self._ask(self._arm, "hold", when) if when else self._ask(self._hold, True)

    def engaged(self):
        """Whether the pause or hold asked for has started."""
        return self._ask(lambda: self.trigger is None and (self.paused or self.holding))

    def engage(self):
        """Starts the pause or hold asked for now, if its command has not come (how many
        links it caught)."""
        return self._ask(self._engage)

    def release_replies(self):
        return self._ask(self._hold, False)

    def reset_all(self):
        return self._ask(self._reset_all)

    def cut_next_reply(self):
        return self._ask(self._arm_cut)

    def set_latency(self, seconds):
        return self._ask(self._set_latency, seconds)

    def blackhole(self):
        return self._ask(self._blackhole)

    def stats(self):
        return self._ask(self._stats)

    def stop(self):
        """Ends the loop and closes every socket (blackholed ones too); writes the log."""
        if self._thread.is_alive():
            self._stopping.set()
            self._wake()
            self._thread.join(10)
        if self.log_path:
            with open(self.log_path, "w") as f:
                f.write("proxy 127.0.0.1:%d -> 127.0.0.1:%d\n" % (self.port, self.target))
                for t, what in self.events:
                    f.write("%8.3f  %s\n" % (t, what))
                f.write("\nlinks at the end:\n")
                for line in self.describe():
                    f.write(line + "\n")

    def describe(self):
        """One line per link ever accepted: its state and what went through it."""
        lines = []
        for link in list(self.links):
            end = " until %+.3f" % (link.ended - self.started) if link.ended else ""
            gone = ", client gave up at %+.3f" % (link.client_gone - self.started) if link.client_gone else ""
            lines.append("link %d: opened %+.3f%s, %s%s%s; up %d B read, %d B written, %d B dropped; "
                         "down %d B read, %d B written, %d B dropped; %d B buffered"
                         % (link.number, link.opened - self.started, end, link.state, " (%s)" % link.how if link.how else "",
                            gone, link.up.read, link.up.written, link.up.dropped, link.down.read, link.down.written,
                            link.down.dropped, link.up.buffered() + link.down.buffered()))
        return lines

    # -- the loop

    def _ask(self, fn, *args):
        done, result = threading.Event(), []
        with self._lock:
            self._requests.append((fn, args, done, result))
        self._wake()
        if not done.wait(10):
            raise RuntimeError("the proxy's loop did not answer within 10 s")
        return result[0] if result else None

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _note(self, what):
        self.events.append((time.monotonic() - self.started, what))

    def _loop(self):
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                self._release_due(now)
                self._update_registrations()
                timeout = 0.05
                due = [f.queue[0][0] for link in self.links if link.state == "open"
                       for f in (link.up, link.down) if f.queue and self._flowing(f)]
                if due:
                    timeout = min(timeout, max(0.0, min(due) - now))
                for key, mask in self._selector.select(timeout):
                    if key.data is None:
                        self._accept()
                    elif key.data == "wake":
                        self._serve_requests()
                    else:
                        link = key.data
                        if link.state not in ("open", "blackholed"):
                            continue  # reset by a request served earlier in this round
                        if mask & selectors.EVENT_READ:
                            self._read(link, key.fileobj)
                        if mask & selectors.EVENT_WRITE and link.state in ("open",):
                            self._write(link.flow_from(link.server if key.fileobj is link.client else link.client))
                self._finish_links()
        except Exception as error:
            # Every connection would freeze as if blackholed, and the bridge be blamed for it:
            # the scenario reads this and fails for the proxy's sake instead.
            self.error = "%s: %s" % (type(error).__name__, error)
            self._note("the proxy's loop failed: %s" % self.error)
        finally:
            self._serve_requests()
            for link in self.links:
                for s in (link.client, link.server):
                    self._close(s)
            for s in (self.listener, self._wake_r, self._wake_w):
                s.close()
            self._selector.close()

    def _serve_requests(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass
        for _ in range(1000):
            with self._lock:
                if not self._requests:
                    return
                fn, args, done, result = self._requests.popleft()
            result.append(fn(*args))
            done.set()

    def _accept(self):
        for _ in range(64):
            try:
                client, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError as error:
                self._note("accepted a connection, but Redis refused it (%s): closed" % error)
                client.close()
                continue
            for s in (client, server):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = Link(len(self.links) + 1, client, server, time.monotonic())
            self.links.append(link)
            self.counts["accepted"] += 1
            self._note("link %d opened%s" % (link.number, " (paused)" if self.paused else " (replies held)" if self.holding else ""))

    def _flowing(self, flow):
        return not self.paused and not (self.holding and flow.direction == "down")

    def _read(self, link, sock):
        flow = link.flow_from(sock)
        try:
            data = sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            data = None
            self._note("link %d: %s side failed: %s" % (link.number, "client" if sock is link.client else "Redis", error))
            # Nothing can be written to it either.
            other = link.down if flow is link.up else link.up
            other.dead = True
            other.drop()
        if not data:
            flow.eof = True
            if link.state == "blackholed":
                if sock is link.client and link.client_gone is None:
                    link.client_gone = time.monotonic()
                    self._note("link %d (blackholed): the client gave up after %.1f s of silence"
                               % (link.number, link.client_gone - link.ended))
            else:
                self._note("link %d: %s closed" % (link.number, "the client" if sock is link.client else "Redis"))
            return
        flow.read += len(data)
        if link.state == "blackholed":
            flow.dropped += len(data)
            return
        now = time.monotonic()
        if flow is link.up:
            if self.trigger and self.trigger[1] in data:
                self._note("link %d sent %s" % (link.number, self.trigger[1].split(b"\r\n")[1].decode()))
                self._engage()
            if self.paused or self.holding:
                link.counted += data.count(self.pattern)
        if flow is link.down and link.cut_armed:
            link.cut_armed = False
            link.reset_when_sent = True
            flow.eof = True  # nothing more from Redis: the link ends once the half is out
            flow.dropped += len(data) - len(data) // 2
            self._note("link %d: a reply of %d B cut to %d B" % (link.number, len(data), len(data) // 2))
            data = data[:len(data) // 2]
        due = max(now + self.latency, flow.last_due)
        flow.last_due = due
        if data:
            flow.queue.append([due, data])

    def _release_due(self, now):
        for link in self.links:
            if link.state != "open":
                continue
            for flow in (link.up, link.down):
                if flow.dead:
                    flow.drop()
                    continue
                if not self._flowing(flow):
                    continue
                while flow.queue and flow.queue[0][0] <= now:
                    flow.out += flow.queue.popleft()[1]
                if flow.out:
                    self._write(flow)

    def _write(self, flow):
        if not flow.out or flow.dead:
            return
        try:
            n = flow.dst.send(flow.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            flow.dead = True
            flow.drop()
            return
        flow.written += n
        del flow.out[:n]

    def _finish_links(self):
        now = time.monotonic()
        for link in self.links:
            if link.state != "open":
                continue
            if link.reset_when_sent and not link.down.out and not link.down.queue:
                self._reset(link, "cut", "after half a reply")
                self.counts["cut"] += 1
                continue
            for flow in (link.up, link.down):
                if flow.eof and not flow.shut and not flow.dead and not flow.queue and not flow.out and self._flowing(flow):
                    flow.shut = True
                    try:
                        flow.dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        flow.dead = True
            if link.up.finished() and link.down.finished():
                link.state, link.ended = "closed", now
                self._unregister(link)
                self._close(link.client)
                self._close(link.server)

    def _update_registrations(self):
        for link in self.links:
            if link.state in ("open", "blackholed"):
                for sock in (link.client, link.server):
                    flow = link.flow_from(sock)
                    mask = 0
                    if not flow.eof and flow.buffered() < MAX_BUFFERED:
                        mask |= selectors.EVENT_READ
                    incoming = link.down if sock is link.client else link.up
                    if link.state == "open" and incoming.out and not incoming.dead:
                        mask |= selectors.EVENT_WRITE
                    self._register(sock, mask, link)

    def _register(self, sock, mask, link):
        old = self._registered.get(sock)
        if old and old[0] == mask:
            return
        if old:
            self._selector.unregister(sock)
            del self._registered[sock]
        if mask:
            self._selector.register(sock, mask, link)
            self._registered[sock] = (mask, link)

    def _unregister(self, link):
        for sock in (link.client, link.server):
            if sock in self._registered:
                self._selector.unregister(sock)
                del self._registered[sock]

    def _close(self, sock, abort=False):
        try:
            if abort:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError as error:
            if error.errno != errno.EBADF:
                raise

    def _reset(self, link, state, how):
        self._unregister(link)
        link.up.drop()
        link.down.drop()
        self._close(link.client, abort=True)
        self._close(link.server, abort=True)
        link.state, link.how, link.ended = state, how, time.monotonic()
        self._note("link %d reset (%s)" % (link.number, how))

    # -- the faults, on the loop's thread

    def _open_links(self):
        return [link for link in self.links if link.state == "open"]

    def _arm(self, mode, command):
        self.trigger = (mode, resp_name(command))
        self._note("to %s when a client sends %s" % (mode, command))
        return {"open": len(self._open_links())}

    def _engage(self):
        if not self.trigger:
            return len(self._open_links())
        mode, self.trigger = self.trigger[0], None
        return (self._pause if mode == "pause" else self._hold)(True)["open"]

    def _pause(self, on):
        self.paused, self.trigger = on, None
        links = self._open_links()
        if on:
            for link in self.links:
                link.counted = 0
        up = sum(link.up.buffered() for link in links)
        down = sum(link.down.buffered() for link in links)
        # Sent before the client gave its connection up, delivered to Redis now.
        late = sum(link.counted for link in self.links if link.up.eof)
        counted = sum(link.counted for link in self.links)
        self._note("%s: %d links open, %d B buffered to Redis, %d B to clients%s"
                   % ("paused" if on else "resumed", len(links), up, down,
                      "" if on else "; %d commands counted, %d from clients gone since" % (counted, late)))
        return {"open": len(links), "up": up, "down": down, "counted": counted, "late": late}

    def _hold(self, on):
        self.holding, self.trigger = on, None
        links = self._open_links()
        if on:
            for link in self.links:
                link.counted = 0
        held = sum(link.down.buffered() for link in links)
        counted = sum(link.counted for link in self.links)
        self._note("%s: %d links open, %d B of replies held%s" % ("holding replies" if on else "replies released", len(links), held,
                                                                   "" if on else "; %d commands counted" % counted))
        return {"open": len(links), "held": held, "counted": counted}

    def _reset_all(self):
        links = self._open_links()
        for link in links:
            self._reset(link, "reset", "reset_all")
        self.counts["reset"] += len(links)
        return len(links)

    def _arm_cut(self):
        links = self._open_links()
        for link in links:
            link.cut_armed = True
        self._note("the next reply of %d links to be cut" % len(links))
        return len(links)

    def _set_latency(self, seconds):
        self.latency = seconds
        self._note("latency %.3f s per chunk" % seconds)
        return len(self._open_links())

    def _blackhole(self):
        links = self._open_links()
        now = time.monotonic()
        for link in links:
            link.up.drop()
            link.down.drop()
            link.state, link.ended = "blackholed", now
        self.counts["blackholed"] += len(links)
        self._note("blackholed %d links: %s" % (len(links), ", ".join(str(link.number) for link in links)))
        return len(links)

    def _stats(self):
        states = collections.Counter(link.state for link in self.links)
        return dict(self.counts, **{"state " + k: v for k, v in states.items()},
                    gave_up=sum(1 for link in self.links if link.client_gone))
