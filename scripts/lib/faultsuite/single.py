"""The single-node scenarios: a backlog drains while one redis-server misbehaves (see
backlog.py for the frame and checker.check_backlog for what is checked)."""
import signal, time

from .backlog import run_backlog
from .keys import BRIDGE_USER, task_key
from .workload import compact
from .resp import RedisError


def restart(server, subscriber, graceful):
    """Stops Redis (SIGKILL, or SHUTDOWN, which writes the AOF), restarts it on its AOF with the
    bridge's user off until the suite's subscriber is back, then lets the bridge in."""
    if graceful:
        try:
            server.client()("SHUTDOWN")
        except (OSError, ConnectionError, RedisError):
            pass
        server.proc.wait(timeout=30)
    else:
        server.kill(signal.SIGKILL)
    time.sleep(0.3)
    server.start(bridge_user_on=False)
    subscriber.connected.wait(10)
    time.sleep(0.05)
    server.client()("ACL", "SETUSER", BRIDGE_USER, "on")
    return "redis %s and restarted on its AOF" % ("shut down" if graceful else "killed (SIGKILL)")


def kill_restart(run):
    run.crashes += 1
    return restart(run.server, run.subscriber, graceful=False)


def graceful_restart(run):
    return restart(run.server, run.subscriber, graceful=True)


def kill_clients(run):
    return run.server.kill_clients()


def client_pause(run):
    return "CLIENT PAUSE 2000: %s" % run.server.client()("CLIENT", "PAUSE", 2000)


def debug_sleep(run):
    return "DEBUG SLEEP 2: %s" % run.server.client()("DEBUG", "SLEEP", 2)


def fill_memory(run):
    return run.server.fill_memory()


def script_flush(run):
    return "SCRIPT FLUSH: %s" % run.server.client()("SCRIPT", "FLUSH")


def large_tasks(run):
    """Every task starts with 150 messages of its own (about 20 KB), so that every append changes
    a field past the staging threshold: each commit writes the new task to a stage that the
    script renames over the task, or deletes."""
    own = compact([{"type": "INFO", "key": "pre-%03d" % k, "localizedText": {"locale": "en-US", "message": "x" * 100}}
                   for k in range(150)])
    list(run.server.client().pipeline([["HSET", task_key("f%04d" % i), "messages", own] for i in range(run.args.tasks)]))
    return None


SCENARIOS = {
    # name: (bridges, repeats, [(fraction of the backlog read, fault)])
    "kill-restart": (1, False, [(0.3, kill_restart)]),
    "graceful-restart": (1, False, [(0.3, graceful_restart)]),
    "client-kill": (1, False, [(f, kill_clients) for f in (0.15, 0.35, 0.55, 0.75)]),
    "client-pause": (1, False, [(0.3, client_pause)]),
    "debug-sleep": (1, False, [(0.3, debug_sleep)]),
    "memory-full": (1, False, [(0.3, fill_memory)]),
    "script-flush": (1, False, [(f, script_flush) for f in (0.3, 0.6)]),
    "repeats": (1, True, []),
    "two-bridges": (2, True, [(0.3, kill_restart), (0.6, kill_clients)]),
    "large-tasks": (2, True, [(0.3, kill_restart), (0.6, kill_clients)]),
}

# Scenarios that shape the tasks before the bridges start.
SETUPS = {"large-tasks": large_tasks}


def run_scenario(name, args, seed):
    bridges, repeats, faults = SCENARIOS[name]
    return run_backlog(name, args, seed, bridges, repeats, faults, setup=SETUPS.get(name))
