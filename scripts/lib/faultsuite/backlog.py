"""One backlog drained through the bridge while faults come: the frame of the single-node and
network scenarios.

A fresh redis-server (AOF, appendfsync always) on a free loopback port stores the tasks and has
the whole backlog queued before the bridge starts; each fault comes once the group has read a
given fraction of it; the run ends when everything is read, acknowledged and nothing is left
pending; then the bridges stop (SIGTERM) and `check_backlog` judges the end state.
"""
import os, shutil, signal, tempfile, time

from .bridge import Bridge
from .checker import check_backlog, progress, summary
from .listeners import Subscriber
from .resp import RedisError
from .servers import Server, free_port
from .workload import backlog, prepare


class Run:
    """What a fault acts on, and what it leaves for the verdict: `notes` (printed on the
    scenario's line) and `problems` (each fails the scenario)."""

    def __init__(self, name, args, directory, server, queued):
        self.name, self.args, self.directory, self.server, self.queued = name, args, directory, server, queued
        self.subscriber, self.bridges, self.started = None, [], None
        self.notes, self.problems = [], []
        self.crashes = 0  # Redis killed (SIGKILL): see checker.check_backlog
        self.cleanups = []  # called last, before Redis stops (a proxy's stop)


def run_backlog(name, args, seed, bridges_wanted, repeats, faults, setup=None, assess=None):
    """Drains a backlog through `bridges_wanted` bridges; `faults` is [(fraction of the backlog
    read, fault(run) -> what it did)]. `setup(run)` may return the REDIS_URL the bridges use
    (a proxy's); `assess(run)`, after the drain, adds to run.notes and run.problems. Prints the
    scenario's line; returns whether it passed."""
    directory = tempfile.mkdtemp(prefix="faults-%s-" % name, dir=args.workdir)
    server = Server(os.path.join(directory, "redis"), free_port())
    run = Run(name, args, directory, server, backlog(args.requests, args.tasks, repeats, seed))
    passed = False
    try:
        server.start()
        prepare(server.client(), args.tasks, run.queued)
        run.subscriber = Subscriber(server.port)
        run.subscriber.start()
        run.subscriber.connected.wait(5)
        url = setup(run) if setup else None
        run.started = started = time.monotonic()
        run.bridges = [Bridge(args.bridge, server.port, os.path.join(directory, "bridge-%d.log" % k), "faults-%d" % k, url=url)
                       for k in range(bridges_wanted)]
        injected, exited, pending_faults = [], False, list(faults)
        deadline = started + args.timeout
        r = None
        while time.monotonic() < deadline:
            try:
                r = r or server.client()
                read, pending, lag = progress(r)
            except (OSError, ConnectionError):
                r, read, pending, lag = None, 0, None, None
            if pending_faults and read >= pending_faults[0][0] * len(run.queued):
                _, fault = pending_faults.pop(0)
                try:
                    injected.append(fault(run))
                except (OSError, ConnectionError, RedisError) as error:
                    injected.append("fault failed: %s" % error)
                r = None
                continue
            if not pending_faults and read >= len(run.queued) and pending == 0 and lag == 0:
                break
            if any(not b.alive() for b in run.bridges):
                exited = True
                break
            time.sleep(0.005)
        elapsed = time.monotonic() - started
        time.sleep(0.3)  # the last publishes reach the subscriber
        if assess:
            assess(run)
        refusals = {}
        for b in run.bridges:
            for reason, n in b.refusals().items():
                refusals[reason] = refusals.get(reason, 0) + n
        alive = all(b.alive() for b in run.bridges) and not exited
        statuses = [b.stop() for b in run.bridges]
        run.subscriber.stop.set()
        ok, counts, problems, applied = check_backlog(
            server.client(), run.queued, list(run.subscriber.messages), crashes=run.crashes, bridges=bridges_wanted)
        problems += run.problems
        timed_out = time.monotonic() >= deadline
        if not alive:
            problems.append("a bridge exited during the run (see %s)" % directory)
        if any(s != 0 for s in statuses):
            problems.append("a bridge stopped with status %s on SIGTERM" % statuses)
        if timed_out:
            problems.append("not done within %d s" % args.timeout)
        passed = (ok and alive and all(s == 0 for s in statuses) and not timed_out and len(injected) == len(faults)
                  and not run.problems)
        if len(injected) != len(faults):
            problems.append("only %d of %d faults injected" % (len(injected), len(faults)))
        ids = len({rid for rid, _, _, _ in run.queued})
        print("%-16s %s  %d requests (%d ids, %d applied) in %.1f s with %d bridge(s); %s; %srefusals %s; %s"
              % (name, "PASS" if passed else "FAIL", len(run.queued), ids, applied, elapsed, bridges_wanted,
                 "; ".join(injected) or "no fault", "".join(note + "; " for note in run.notes), refusals or "none",
                 summary(counts)), flush=True)
        for problem in problems:
            print("    " + problem, flush=True)
        if not passed:
            print("    logs and data: %s" % directory, flush=True)
        return passed
    finally:
        # Also on the way out of an interrupted run: the bridges run in sessions of their own, so
        # the signal that stopped the suite did not reach them.
        for b in run.bridges:
            if b.alive():
                b.stop()
        if run.subscriber:
            run.subscriber.stop.set()
        for stop in run.cleanups:
            stop()
        server.kill(signal.SIGTERM)
        if passed and not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
