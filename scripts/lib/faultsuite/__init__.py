"""The fault suite (scripts/faults): a backlog of update requests drains through the bridge while
Redis, or the network to it, misbehaves, and a checker compares every reply and every task with
what was sent. See docs/operations.md, "Proving the promise: scripts/faults".

Modules in layers, each importing only those before it (scripts/lib/check_layers.py enforces it):

    resp, keys        the RESP clients; the bridge's key layout and the suite's credentials
    servers           redis-server processes: one node, Sentinel, Cluster; ports; wait_for
    bridge            the bridge process
    workload          tasks and patches: the backlog, the markers, the benchmarks' mix
    listeners         subscribers that collect what the bridge publishes
    checker           the checkers and verdicts; the drain's progress over time
    backlog           one backlog drained through bridges while faults come
    proxy             a loopback TCP proxy that misbehaves on demand
    single, sentinel, cluster, network    the scenarios
    cli               arguments, the scenarios chosen, "N passed, M failed"

Python 3 standard library only. Nothing here is imported by __init__, so that a benchmark can
import one module (cluster_drain.py takes the workload) without the rest.
"""
