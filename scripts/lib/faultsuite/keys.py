"""The bridge's keys and channels as the contract names them (default prefix), and the ACL user
the suite gives the bridge. One place, so that the checkers and the producers cannot disagree."""

PREFIX = "taskstatus"
GROUP = PREFIX + "-bridge"
REQUESTS = PREFIX + ":requests"
DEAD = PREFIX + ":requests:dead"
EVENTS = PREFIX + ":events"
UPDATES = PREFIX + ":updates"
REPLIES = "faults:replies"
BRIDGE_USER, BRIDGE_PASSWORD = "bridge", "fault-suite-bridge-password"


def task_key(tid):
    return "%s:task:{%s}" % (PREFIX, tid)


def reply_key(tid, rid):
    return "%s:reply:{%s}:%s" % (PREFIX, tid, rid)


def shard_stream(k):
    return "%s:{s%d}" % (REQUESTS, k)


def shard_events(k):
    return "%s:{s%d}" % (EVENTS, k)


def bridge_url(port):
    """The bridge's REDIS_URL for a node (or a proxy) on `port`."""
    return "redis://%s:%s@127.0.0.1:%d/0" % (BRIDGE_USER, BRIDGE_PASSWORD, port)


def acl_user_args(state="on"):
    """redis-server arguments that create the bridge's user."""
    return ["--user", BRIDGE_USER, state, ">" + BRIDGE_PASSWORD, "~*", "&*", "+@all"]


# The list index (contract section 9): one sorted set per completion status, scored by `created`.
INDEX_STATUSES = ("none", "SUCCESS", "WARNING", "ERROR", "TERMINATED", "TEMPERROR")


def index_key(status):
    return PREFIX + ":index:" + status

