"""The network scenarios: the single-node backlog and checker, with the bridge reaching Redis
through proxy.Proxy (its REDIS_URL names the proxy's port; the suite's producer, subscriber and
checker talk to Redis directly), and the network misbehaving while the backlog drains.

Besides the checker's verdict, each scenario measures how soon the drain goes on after its fault
(from its start, or from its end for a pause or hold that ends): the time until the count of
entries the group has acknowledged rises after the last time it stood still for a second or
more (checker.DrainWatch.recovered). So a drain that goes on after one silent connection is given
up, then stops on the next, has recovered only once it goes on for good. A recovery past its
bound fails the scenario, and so does a fault that did not bite (the drain over before it, no
commit caught by a hold), which would prove nothing.
"""
import os, time

from .backlog import run_backlog
from .checker import DrainWatch
from .keys import bridge_url
from .proxy import Proxy

# Longer than the bridge's command timeout (10 s by default) and its reader's (its block time plus
# 10 s), so that the bridge gives its connections up during the fault, and connections it opens
# meanwhile are caught too.
SILENCE = 12.0
# The bridge's commit (CommitScript): a pause or hold starts as one goes out, so that it is caught.
COMMIT = "EVALSHA"
# Per chunk and direction: a round trip of a second, slow but far from any command timeout.
LATENCY, LATENCY_SECONDS = 0.5, 10.0

# The bounds, in seconds. A silent connection and a reset one: the bound. After a pause or
# hold that ends: twice the back-off's cap (5 s), as the bridge may be waiting out its back-off
# when the network comes back. Under latency: the longest time the drain may stand still, eight
# round trips (a batch of the baseline build took five one after the other: 5 s between
# acknowledgements under this latency), and less than the time the latency lasts, so that a
# bridge that gets nothing done under it fails.
SILENT_BOUND = RESET_BOUND = 15.0
AFTER_END_BOUND = 10.0
STALL_BOUND = 8.0


def setup(run):
    run.proxy = Proxy(run.server.port, log=os.path.join(run.directory, "proxy.log"))
    run.cleanups.append(run.proxy.stop)
    run.watch = DrainWatch(run.server.port)
    run.watch.start()
    run.cleanups.append(run.watch.stop.set)
    run.recoveries, run.stalls = [], []  # (what, since, until, bound); (what, start, end, bound)
    return bridge_url(run.proxy.port)


def mark(run, what, bound):
    """A fault to recover from, measured from now: the one before ends here."""
    now = time.monotonic()
    if run.recoveries and run.recoveries[-1][2] is None:
        run.recoveries[-1] = run.recoveries[-1][:2] + (now,) + run.recoveries[-1][3:]
    run.recoveries.append((what, now, None, bound))


def underway(run, what):
    """A fault that comes after the drain is over proves nothing."""
    if run.watch.acked() >= len(run.queued):
        run.problems.append("the backlog was drained before %s: the fault proved nothing" % what)


def wait_engaged(run, what):
    """Waits (up to 5 s) for the pause or hold asked for to start as the bridge sends a commit;
    starts it anyway after that, and says so."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if run.proxy.engaged():
            return
        time.sleep(0.005)
    run.proxy.engage()
    run.notes.append("no commit came within 5 s: the %s started without one" % what)


def for_a_while(run, what, engage, release):
    """Engages a fault as a commit goes out, keeps it SILENCE seconds, releases it; the time it
    lasted and what `release` said. Recovery is measured from the release."""
    underway(run, "the " + what)
    engage(when=COMMIT)
    wait_engaged(run, what)
    start = time.monotonic()
    time.sleep(SILENCE)
    released = release()
    end = time.monotonic()
    run.recoveries.append(("the %s ended" % what, end, None, AFTER_END_BOUND))
    return end - start, released


def pause(run):
    lasted, resumed = for_a_while(run, "pause", run.proxy.pause, run.proxy.resume)
    if not resumed["up"] and not resumed["down"]:
        run.problems.append("nothing was buffered during the pause: the bridge did not talk to Redis")
    return ("proxy paused both ways for %.1f s as a commit went out (on resume %d B to Redis, %d B to the bridge; "
            "%d commits held back, %d of them delivered after the bridge had given their connection up)"
            % (lasted, resumed["up"], resumed["down"], resumed["counted"], resumed["late"]))


def hold_replies(run):
    lasted, released = for_a_while(run, "hold", run.proxy.hold_replies, run.proxy.release_replies)
    if not released["counted"]:
        run.problems.append("no commit reached Redis while the replies were held: the ambiguous commit was not exercised")
    # Counted in what clients sent after the hold began: commits sent in the same instant on
    # another connection ran too, uncounted, so this is a floor.
    return ("proxy held Redis's answers for %.1f s from a commit on (at least %d commits ran meanwhile, their answers held; "
            "%d B released to the bridge's open connections)" % (lasted, released["counted"], released["held"]))


def reset(run):
    underway(run, "the reset")
    links = run.proxy.reset_all()
    mark(run, "reset %d" % (len(run.recoveries) + 1), RESET_BOUND)
    if not links:
        run.problems.append("the reset found no connection open")
    return "proxy reset %d connections (RST both ways)" % links


def cut_reply(run):
    underway(run, "the cut")
    links = run.proxy.cut_next_reply()
    mark(run, "cut %d" % (len(run.recoveries) + 1), RESET_BOUND)
    return "proxy armed to cut the next reply of %d connections in half, then reset" % links


def latency(run):
    underway(run, "the latency")
    run.proxy.set_latency(LATENCY)
    start = time.monotonic()
    time.sleep(LATENCY_SECONDS)
    run.proxy.set_latency(0)
    run.stalls.append(("under latency", start, time.monotonic(), STALL_BOUND))
    return "proxy added %.0f ms per chunk each way for %.0f s" % (LATENCY * 1000, LATENCY_SECONDS)


def blackhole(run):
    underway(run, "the blackhole")
    links = run.proxy.blackhole()
    mark(run, "the blackhole", SILENT_BOUND)
    if not links:
        run.problems.append("the blackhole found no connection open")
    return "proxy silenced the %d open connections for good (new ones work)" % links


def assess(run):
    total = len(run.queued)
    for what, since, until, bound in run.recoveries:
        took = run.watch.recovered(since, until, total)
        if took is None:
            run.notes.append("the drain did not go on after %s" % what)
            run.problems.append("the drain did not go on after %s" % what)
            continue
        run.notes.append("recovery %.1f s after %s (bound %.0f s)" % (took, what, bound))
        if took > bound:
            run.problems.append("the drain went on %.1f s after %s: more than %.0f s" % (took, what, bound))
    for what, start, end, bound in run.stalls:
        stall = run.watch.longest_stall(start, end, total)
        run.notes.append("longest stall %.1f s %s (bound %.0f s)" % (stall, what, bound))
        if stall > bound:
            run.problems.append("the drain stood still %.1f s %s: more than %.0f s" % (stall, what, bound))
    # When the bridge let each silent connection go: one after the other, or all at once.
    gave_up = sorted(link.client_gone - link.ended for link in list(run.proxy.links) if link.client_gone and link.ended)
    if gave_up:
        run.notes.append("the bridge gave up silent connections after %s s" % ", ".join("%.1f" % t for t in gave_up))
    stats = run.proxy.stats()
    if run.name == "net-cut-reply" and not stats.get("cut"):
        run.problems.append("no reply was cut: the fault did not bite")
    run.notes.append("proxy: %d connections, %d reset, %d cut, %d blackholed"
                     % (stats.get("accepted", 0), stats.get("reset", 0), stats.get("cut", 0), stats.get("blackholed", 0)))
    if run.proxy.error:
        run.problems.append("the proxy failed: %s (not the bridge's fault)" % run.proxy.error)


NETWORK_SCENARIOS = {
    # name: [(fraction of the backlog read, fault)]
    "net-pause": [(0.3, pause)],
    "net-hold-replies": [(0.3, hold_replies)],
    "net-reset": [(0.3, reset), (0.6, reset)],
    "net-cut-reply": [(0.3, cut_reply), (0.6, cut_reply)],
    "net-latency": [(0.3, latency)],
    "net-blackhole": [(0.3, blackhole)],
}


def run_network_scenario(name, faults, args, seed):
    return run_backlog(name, args, seed, 1, False, faults, setup=setup, assess=assess)
