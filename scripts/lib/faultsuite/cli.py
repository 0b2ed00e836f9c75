"""scripts/faults' command line: the scenarios chosen, one line each, "N passed, M failed"."""
import argparse, signal, sys

from . import cluster, httppath, network, sentinel, single

GROUPS = (
    # (group, {name: spec}, run(name, spec, args, seed))
    ("single", single.SCENARIOS, lambda name, spec, args, seed: single.run_scenario(name, args, seed)),
    ("sentinel", sentinel.SENTINEL_SCENARIOS, sentinel.run_sentinel_scenario),
    ("cluster", cluster.CLUSTER_SCENARIOS, cluster.run_cluster_scenario),
    ("network", network.NETWORK_SCENARIOS, network.run_network_scenario),
    ("http", httppath.HTTP_SCENARIOS, httppath.run_http_scenario),
)


def main(argv=None):
    # Stopped (scripts/faults interrupted): the scenario's `finally` stops its bridge and servers,
    # and a second signal (timeout(1) signals the whole group, the wrapper forwards one too) must
    # not cut that short.
    def stop(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(143)
    signal.signal(signal.SIGTERM, stop)
    every = {name: (spec, run) for _, scenarios, run in GROUPS for name, spec in scenarios.items()}
    ap = argparse.ArgumentParser(prog="scripts/faults", description=(__package__ and sys.modules[__package__].__doc__ or "").split("\n\n")[0])
    ap.add_argument("--bridge", required=True, help="the task-status-bridge executable")
    ap.add_argument("--requests", type=int, default=10000, help="the backlog of each Redis scenario")
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--rate", type=int, default=1000, help="requests a second in the failover and cluster scenarios")
    ap.add_argument("--seconds", type=float, default=30, help="how long the failover and cluster scenarios' load runs")
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the data and logs of passing scenarios too")
    ap.add_argument("scenarios", nargs="*", help="some of: " + ", ".join(every))
    args = ap.parse_args(argv)
    names = args.scenarios or list(every)
    unknown = [n for n in names if n not in every]
    if unknown:
        ap.error("unknown scenario %s; choose from %s" % (unknown, ", ".join(every)))
    passed = 0
    for k, name in enumerate(names):
        spec, run = every[name]
        passed += run(name, spec, args, args.seed + k)
    print("%d passed, %d failed" % (passed, len(names) - passed))
    sys.exit(0 if passed == len(names) else 1)
