"""The work our own scripts queue: the fault suite's tasks, backlog and markers, and the
benchmarks' mix of realistic updates (scripts/lib/cluster_drain.py).

The fault suite's patches each append a marker (the request id) to the task's messages, so that
the checker can count every update in the task: a marker missing is an update lost, a marker
twice is an update applied twice.
"""
import json, random

from .keys import REPLIES, REQUESTS, index_key, task_key


def task_document(i):
    return {
        "id": "f%04d" % i, "type": "QUARTZ", "uniqueName": "Fault suite task %d" % i,
        "description": "A task of the fault suite", "launcher": "faults",
        "created": "2026-11-30T10:00:00.000Z", "modified": "2026-11-30T10:00:00.000Z",
        "messages": "[]", "returns": "[]", "attributes": "{}", "percentComplete": "0", "_rev": "1",
    }


# The tasks' `created`, 2026-11-30T10:00:00.000Z, in Unix milliseconds (the index's score).
CREATED_MS = 1796032800000


def task_fields(i):
    """HSET's field-value arguments for task i."""
    return [x for kv in task_document(i).items() for x in kv]


def compact(value):
    return json.dumps(value, separators=(",", ":"))


def marker(rid):
    return {"op": "add", "path": "/messages/-", "value": {"type": "INFO", "key": rid}}


def marker_patch(rid):
    return compact([marker(rid)])


def request_fields(tid, patch, rid):
    """A stream entry's fields, answered on the suite's reply channel."""
    return ["id", tid, "patch", patch, "request-id", rid, "reply-to", REPLIES, "x-sailpoint-experimental", "true"]


def backlog(requests, tasks, repeats, seed):
    """The backlog, in stream order: (request id, task id, patch, expected status). About 3% fail a
    `test` (400) and 1% name a task that does not exist (404); the rest append their request id as
    a message. With `repeats`, a tenth of the request ids are queued as 8 copies in a row, as a
    producer retrying while the bridge is behind would."""
    rng = random.Random(seed)
    queued = []
    k = 0
    while len(queued) < requests:
        rid = "q%06d" % k
        k += 1
        roll = rng.random()
        if roll < 0.01:
            tid, status = "nope%04d" % rng.randrange(tasks), 404
            patch = [marker(rid)]
        elif roll < 0.04:
            tid, status = "f%04d" % rng.randrange(tasks), 400
            patch = [{"op": "test", "path": "/type", "value": "QPOC"}, marker(rid)]
        else:
            tid, status = "f%04d" % rng.randrange(tasks), 200
            patch = [marker(rid), {"op": "replace", "path": "/progress", "value": "step %d" % k}]
            if roll > 0.92:
                # Now and then the task's status moves: the list index moves with it, in the commit.
                patch.append({"op": "replace", "path": "/completionStatus", "value": rng.choice(["SUCCESS", "ERROR", None])})
        copies = 8 if repeats and rng.random() < 0.1 else 1
        for _ in range(copies):
            queued.append((rid, tid, compact(patch), status))
    return queued[:requests]


def prepare(r, tasks, queued):
    """An empty Redis with the tasks stored and the backlog queued on the request stream."""
    r("FLUSHALL")
    list(r.pipeline([["HSET", task_key("f%04d" % i)] + task_fields(i) for i in range(tasks)]))
    # Indexed as `put` or `reindex` would: running, scored by created.
    list(r.pipeline([["ZADD", index_key("none"), CREATED_MS, "f%04d" % i] for i in range(tasks)]))
    list(r.pipeline([["XADD", REQUESTS, "*"] + request_fields(tid, patch, rid) for rid, tid, patch, _ in queued]))


# ---------------------------------------------------------------------------------------------
# The benchmarks' mix: tasks shaped like SailPoint's aggregation tasks, and updates as a running
# aggregation sends them (progress most often, then messages, then the completion), with one in
# twenty invalid. The same shapes and proportions as the reference drain (../shared/bench), so
# that our cluster figures and its figures measure the same work.

def bench_task(i):
    """Task i as Redis hash fields (JSON-valued properties as JSON text)."""
    stamp = "2020-07-11T21:23:15.000Z"
    definition = {
        "id": "2c91808475b4334b0175e1dff64b63c5", "uniqueName": "Cloud Account Aggregation",
        "description": "Aggregates from the specified application.", "parentName": "Cloud Account Aggregation",
        "executor": "sailpoint.task.ServiceTaskExecutor", "arguments": {},
    }
    source = {"id": "c6dc37bf508149b28ce5b7d90ca4bbf9", "type": "APPLICATION", "name": "Active Directory [source]"}
    fields = {
        "id": "t%06d" % i, "type": "QUARTZ", "uniqueName": "Big Task %d" % i, "description": "A Really Big Task",
        "parentName": "Parent Task", "launcher": "sweep", "target": source,
        "created": stamp, "modified": stamp, "launched": stamp,
        "messages": [], "returns": [{"name": "label", "attributeName": "identityCount"}],
        "attributes": {"identityCount": 0}, "progress": "Started", "percentComplete": "0",
        "taskDefinitionSummary": definition, "_rev": "1",
    }
    return {name: value if isinstance(value, str) else json.dumps(value) for name, value in fields.items()}


def _progress(tid, k):
    return [{"op": "replace", "path": "/percentComplete", "value": k % 100},
            {"op": "replace", "path": "/progress", "value": "Step %d" % k}]


def _message(tid, k):
    text = {"locale": "en-US", "message": "step %d done" % k}
    return [{"op": "add", "path": "/messages/-",
             "value": {"type": "INFO", "localizedText": text, "key": "akey", "parameters": [{"name": "value"}]}},
            {"op": "replace", "path": "/attributes/identityCount", "value": k}]


def _completion(tid, k):
    return [{"op": "test", "path": "/id", "value": tid},
            {"op": "replace", "path": "/completionStatus", "value": "SUCCESS"},
            {"op": "replace", "path": "/completed", "value": "2026-11-28T12:00:00.000Z"},
            {"op": "replace", "path": "/percentComplete", "value": 100}]


# Cumulative share of each kind of valid update; what is left over is invalid.
_BENCH_MIX = ((0.55, _progress), (0.75, _message), (0.95, _completion))

# Each fails for another reason: a value the schema refuses, a path that is not there, a `test`
# that does not hold, a property of the wrong type.
_BENCH_INVALID = (
    [{"op": "replace", "path": "/completionStatus", "value": "DONE"}],
    [{"op": "remove", "path": "/nonexistent"}],
    [{"op": "test", "path": "/id", "value": "someone-else"}],
    [{"op": "replace", "path": "/messages", "value": 7}],
)


def bench_patch(rng, tid, k):
    """Update k of task `tid`: (patch JSON text, the status it deserves)."""
    roll = rng.random()
    for upper, make in _BENCH_MIX:
        if roll < upper:
            return json.dumps(make(tid, k)), 200
    return json.dumps(rng.choice(_BENCH_INVALID)), 400
