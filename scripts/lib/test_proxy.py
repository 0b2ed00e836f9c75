#!/usr/bin/env python3
"""Checks that the fault suite's proxy (faultsuite/proxy.py) does each fault it claims, against a
private redis-server: a network scenario that passes because its proxy did nothing would prove
nothing. scripts/test runs it (a few seconds); it exits 1 with the checks that failed.
"""
import os, shutil, signal, socket, sys, tempfile, time

from faultsuite.proxy import Proxy
from faultsuite.resp import Redis, RedisError
from faultsuite.servers import Server, free_port

failures = []


def expect(condition, what):
    print("  %s  %s" % ("ok  " if condition else "FAIL", what), flush=True)
    if not condition:
        failures.append(what)


def times_out(conn, *args):
    """Sends a command and reports whether no answer came before the connection's timeout."""
    conn.sock.sendall(Redis.encode(list(args)))
    try:
        conn.read()
        return False
    except socket.timeout:
        return True


def fails(conn):
    """Whether reading from the connection ends in an error (reset or closed) within its timeout."""
    try:
        conn.read()
        return False
    except (ConnectionError, OSError) as error:
        return not isinstance(error, socket.timeout)


def main():
    directory = tempfile.mkdtemp(prefix="test-proxy-")
    server = Server(os.path.join(directory, "redis"), free_port())
    proxy = None
    try:
        server.start()
        direct = server.client()
        proxy = Proxy(server.port, log=os.path.join(directory, "proxy.log"))

        print("forwarding")
        c = Redis(proxy.port, timeout=2)
        expect(c("PING") == "PONG", "PING through the proxy")
        direct("SET", "big", "x" * 200000)
        expect(len(c("GET", "big")) == 200000, "a 200 kB reply through the proxy")

        print("pause: buffered both ways, delivered on resume")
        c = Redis(proxy.port, timeout=0.5)
        proxy.pause()
        expect(times_out(c, "SET", "paused", "1"), "no answer while paused")
        expect(direct("GET", "paused") is None, "the command did not reach Redis while paused")
        late = Redis(proxy.port, timeout=0.5)
        late.sock.sendall(Redis.encode(["INCR", "sent-then-closed"]))
        time.sleep(0.1)
        late.close()
        proxy.resume()
        c.sock.settimeout(2)
        expect(c.read() == "OK", "the answer arrives on resume")
        time.sleep(0.3)
        expect(direct("GET", "paused") == b"1", "the command ran on resume")
        expect(direct("GET", "sent-then-closed") == b"1", "what a client sent before closing reaches Redis on resume")

        print("hold: commands run, answers wait")
        c = Redis(proxy.port, timeout=0.5)
        proxy.hold_replies()
        expect(times_out(c, "INCR", "held"), "no answer while held")
        expect(direct("GET", "held") == b"1", "the command ran while its answer was held")
        held = proxy.release_replies()
        c.sock.settimeout(2)
        expect(c.read() == 1, "the held answer arrives on release (%s)" % held)

        print("reset")
        c = Redis(proxy.port, timeout=2)
        c("PING")
        expect(proxy.reset_all() >= 1, "reset_all reset the open links")
        try:
            c.sock.sendall(Redis.encode(["PING"]))
            reset_seen = fails(c)
        except ConnectionResetError:
            reset_seen = True
        expect(reset_seen, "the client sees its connection reset")
        expect(Redis(proxy.port, timeout=2)("PING") == "PONG", "a new connection works")

        print("cut")
        c = Redis(proxy.port, timeout=2)
        c("PING")
        proxy.cut_next_reply()
        c.sock.sendall(Redis.encode(["GET", "big"]))
        got, error = b"", None
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                chunk = c.sock.recv(1 << 20)
            except OSError as e:
                error = e
                break
            if not chunk:
                error = "closed"
                break
            got += chunk
        expect(0 < len(got) < 200000, "the client got part of the reply (%d B)" % len(got))
        expect(isinstance(error, ConnectionResetError), "then a reset (%r)" % error)

        print("latency")
        c = Redis(proxy.port, timeout=5)
        proxy.set_latency(0.3)
        start = time.monotonic()
        c("PING")
        one = time.monotonic() - start
        start = time.monotonic()
        replies = list(c.pipeline([["PING"]] * 50))
        fifty = time.monotonic() - start
        proxy.set_latency(0)
        expect(0.55 <= one < 1.5, "a round trip takes twice the latency (%.2f s)" % one)
        expect(replies == ["PONG"] * 50 and fifty < 1.5, "a pipeline pays it once, in order (%.2f s)" % fifty)

        print("blackhole")
        old = Redis(proxy.port, timeout=0.5)
        old("PING")
        expect(proxy.blackhole() >= 1, "blackhole took the open links")
        expect(times_out(old, "INCR", "blackholed"), "an old connection gets no answer")
        expect(direct("GET", "blackholed") is None, "and its command never reached Redis")
        expect(Redis(proxy.port, timeout=2)("PING") == "PONG", "a new connection works")
        old.close()
        time.sleep(0.2)
        stats = proxy.stats()
        expect(stats.get("gave_up", 0) >= 1 and stats.get("state blackholed", 0) >= 1,
               "the log sees the client give up, the link stays blackholed (%s)" % stats)
        expect(proxy.error is None, "the proxy's loop never failed (%s)" % proxy.error)
    except (OSError, ConnectionError, RedisError, RuntimeError) as error:
        failures.append("the test could not run: %r" % error)
        print("  FAIL  the test could not run: %r" % error)
    finally:
        if proxy:
            proxy.stop()
            expect(not proxy._thread.is_alive(), "stop ends the proxy's thread")
        server.kill(signal.SIGTERM)
    if failures:
        print("test_proxy: %d failed (log and data in %s)" % (len(failures), directory))
        sys.exit(1)
    shutil.rmtree(directory, ignore_errors=True)
    print("test_proxy: all passed")


if __name__ == "__main__":
    main()
