"""The checkers: what Redis holds and what was published, compared with what was sent.

Two checkers. `check_backlog` for a backlog queued before the bridge starts (the single-node and
network scenarios): every request id is known up front, with the status it deserves. `judge` for
a load queued while the fault happens (Sentinel and Cluster): markers counted from what was
published and what the final master holds. Both count a marker missing from its task as *lost*
and a marker present twice as *doubled*.

And `DrainWatch`: the drain's progress over time, for the recovery times of the network scenarios.
"""
import json, threading, time

from .keys import DEAD, EVENTS, GROUP, INDEX_STATUSES, PREFIX, REQUESTS, index_key, reply_key, shard_events, shard_stream, task_key

STAGES = PREFIX + ":stage:*"


def marker_keys(messages):
    """The markers among a task's messages (a task may start with messages of its own: `pre-`)."""
    return [m["key"] for m in messages if not m["key"].startswith("pre-")]
from .resp import Redis, RedisError, pairs, text
from .workload import CREATED_MS


def change_feed(call, feed=None, copies=None):
    """The change feed as {(task id, rev): {request ids}}, read in chunks. `call` runs one command
    (a Redis, or a cluster client bound to the feed's key); `feed` collects several feeds;
    `copies`, when given, counts the entries of each (task id, rev, request id)."""
    feed = {} if feed is None else feed
    cursor = "-"
    for _ in range(100000):
        chunk = call("XRANGE", cursor, "+", "COUNT", 5000)
        if not chunk:
            break
        for _, flat in chunk:
            f = pairs(flat)
            key = (text(f.get("id")), int(f.get("rev", b"0")))
            feed.setdefault(key, set()).add(text(f.get("request-id")))
            if copies is not None:
                copies[key + (text(f.get("request-id")),)] = copies.get(key + (text(f.get("request-id")),), 0) + 1
        cursor = "(" + text(chunk[-1][0])
    return feed


def events_of(r, stream=EVENTS):
    return lambda *args: r(args[0], stream, *args[1:])


def progress(r):
    """(entries read by the group, pending, lag)."""
    try:
        for group in r("XINFO", "GROUPS", REQUESTS):
            info = pairs(group)
            if text(info.get("name")) == GROUP:
                return info.get("entries-read") or 0, info.get("pending") or 0, info.get("lag")
    except (RedisError, OSError, ConnectionError):
        pass
    return 0, None, None


def unread(r):
    """0 when the group has read up to the stream's last entry, else 1: the group's lag counter
    may not survive a failover."""
    last = pairs(r("XINFO", "STREAM", REQUESTS)).get("last-generated-id")
    for group in r("XINFO", "GROUPS", REQUESTS):
        info = pairs(group)
        if text(info.get("name")) == GROUP:
            return 0 if info.get("last-delivered-id") == last else 1
    return 1


# ---------------------------------------------------------------------------------------------
# A backlog queued up front


# Entries one bridge may hold announced but not yet flushed to subscribers when Redis dies: a
# batch (--batch-size, 128 by default), twice for the one being read while the last one's
# messages wait in Redis's output buffers.
CRASH_WINDOW = 2 * 128


def check_backlog(r, queued, subscriber_messages, crashes=0, bridges=1):
    """Every reply and every task against the backlog `queued` (see workload.backlog):
    (ok, counts, problems, updates applied). With one bridge, each task's markers must also be in
    queue order (`out_of_order`).

    `crashes`: how many times Redis was killed (SIGKILL) during the run. Redis writes its AOF
    before it sends what it queued for subscribers, so a kill can keep an acknowledgement (on
    disk) and drop the replies published in the same transaction (in memory): Pub/Sub is
    at-most-once across a crash, and the contract says so. Such replies are counted apart
    (`unpublished_at_crash`), and only allowed when each is stored and they all lie within one
    crash window of the queue per crash and bridge; any other missing publication fails."""
    problems = []
    copies, expected, task_of = {}, {}, {}
    for rid, tid, _, status in queued:
        copies[rid] = copies.get(rid, 0) + 1
        expected[rid], task_of[rid] = status, tid
    rids = list(expected)
    stored = dict(zip(rids, r.pipeline([["GET", reply_key(task_of[rid], rid)] for rid in rids])))
    counts = {"missing": 0, "wrong": 0, "lost": 0, "doubled": 0, "published_missing": 0, "published_extra": 0,
              "published_mismatch": 0, "feed_missing": 0, "feed_doubled": 0, "bad_revision": 0, "bad_body": 0, "index_wrong": 0,
              "out_of_order": 0}

    def note(kind, message):
        counts[kind] += 1
        if counts[kind] <= 3:
            problems.append(message)

    replies, successes = {}, {}
    for rid in rids:
        raw = stored[rid]
        if raw is None or isinstance(raw, RedisError):
            note("missing", "no stored reply for %s" % rid)
            continue
        reply = json.loads(raw)
        replies[rid] = reply
        if reply.get("status") != expected[rid]:
            note("wrong", "%s: status %s, expected %s (%s)" % (rid, reply.get("status"), expected[rid],
                                                            json.dumps(reply.get("body"))[:200]))
        elif expected[rid] == 200:
            successes.setdefault(task_of[rid], []).append((reply.get("rev"), rid))

    # Published: each copy once. An error byte for byte the stored reply; a success (stored without
    # its task) at the stored revision, its body the task at its ETag's revision.
    published = {}
    for payload in subscriber_messages:
        try:
            rid = json.loads(payload)["requestId"]
        except (ValueError, KeyError):
            continue
        published.setdefault(rid, []).append(payload)
    unpublished = []
    for rid in rids:
        got = published.get(rid, [])
        if len(got) < copies[rid]:
            unpublished.append(rid)
        elif len(got) > copies[rid]:
            note("published_extra", "%s: published %d times for %d copies" % (rid, len(got), copies[rid]))
        if stored.get(rid) is not None and any(not same_answer(p, stored[rid]) for p in got):
            note("published_mismatch", "%s: a published reply differs from the stored one" % rid)

    # Missing publications: within the crash windows, of stored replies, they are the crash's.
    position = {}
    for k, (rid, _, _, _) in enumerate(queued):
        position.setdefault(rid, k)
    at_crash = []
    if crashes and unpublished and all(stored.get(rid) is not None for rid in unpublished):
        spots = sorted(position[rid] for rid in unpublished)
        if spots[-1] - spots[0] < crashes * bridges * CRASH_WINDOW:
            at_crash, unpublished = unpublished, []
    counts["unpublished_at_crash"] = len(at_crash)
    for rid in unpublished:
        got = published.get(rid, [])
        note("published_missing", "%s: published %d times for %d copies" % (rid, len(got), copies[rid]))

    # Tasks: revisions 2..n+1 once each, every reply showing exactly the markers before it.
    tids = sorted({tid for tid in task_of.values() if tid.startswith("f")})
    hashes = dict(zip(tids, r.pipeline([["HGETALL", task_key(tid)] for tid in tids])))
    for tid in tids:
        done = sorted(successes.get(tid, []), key=lambda x: (x[0] or 0))
        revs = [rev for rev, _ in done]
        if revs != list(range(2, 2 + len(done))):
            note("bad_revision", "%s: revisions of its 200s are %s..., expected 2..%d once each" % (tid, revs[:8], 1 + len(done)))
        fields = pairs(hashes[tid])
        if int(fields.get("_rev", b"0")) != 1 + len(done):
            note("bad_revision", "%s: _rev %s, expected %d" % (tid, text(fields.get("_rev")), 1 + len(done)))
        markers = marker_keys(json.loads(fields.get("messages", b"[]")))
        order = [rid for _, rid in done]
        for rid in order:
            n = markers.count(rid)
            if n == 0:
                note("lost", "%s: the marker of %s (answered 200) is not in the task" % (tid, rid))
            elif n > 1:
                note("doubled", "%s: the marker of %s is in the task %d times" % (tid, rid, n))
        if bridges == 1:
            # One bridge: a task's requests are applied in queue order (their first copies'),
            # whatever Redis does meanwhile (several bridges may reorder after a crash: contract).
            applied = [m for m in markers if m in position]
            if applied != sorted(applied, key=position.get):
                late = next(m for k, m in enumerate(applied) if k + 1 < len(applied) and position[m] > position[applied[k + 1]])
                note("out_of_order", "%s: the marker of %s (queued at %d) is applied before one queued earlier" % (tid, late, position[late]))
        extra = [m for m in markers if m not in set(order)]
        for m in extra:
            note("doubled" if m in expected else "lost", "%s: the task holds the marker of %s, which was not answered 200" % (tid, m))
        # The task as stored is the task the answers at its revision show, property by property.
        final = int(fields.get("_rev", b"0"))
        shown = [json.loads(p) for rev, rid in done for p in published.get(rid, [])]
        for reply in (x for x in shown if etag_revision(x) == final):
            differing = [name for name, value in (reply.get("body") or {}).items() if stored_field(value) != fields.get(name)]
            if differing:
                note("bad_body", "%s at rev %d: the stored task differs from the answer in %s" % (tid, final, differing))
            break
        for rev, rid in done:
            for payload in published.get(rid, []):
                reply = json.loads(payload)
                shown = etag_revision(reply)
                body_markers = marker_keys((reply.get("body") or {}).get("messages", []))
                if shown is None or shown < (rev or 0) or body_markers != order[:shown - 1]:
                    note("bad_body", "%s at rev %s: the reply (ETag %s) shows %d markers, not the %s before its ETag in order" %
                         (rid, rev, shown, len(body_markers), (shown or 1) - 1))

    # The list index: each task in the set of its stored status, and in no other, at its created.
    scores = list(r.pipeline([["ZSCORE", index_key(status), tid] for tid in tids for status in INDEX_STATUSES]))
    for k, tid in enumerate(tids):
        status = text(pairs(hashes[tid]).get("completionStatus")) or "none"
        found = {s: scores[k * len(INDEX_STATUSES) + j] for j, s in enumerate(INDEX_STATUSES)}
        placed = [s for s, score in found.items() if score is not None]
        if placed != [status] or float(found[status]) != CREATED_MS:
            note("index_wrong", "%s: completionStatus %s, but the index has it under %s" % (tid, status, placed or "nothing"))

    # The change feed.
    feed = change_feed(events_of(r))
    for tid, done in successes.items():
        for rev, rid in done:
            if (tid, rev) not in feed:
                note("feed_missing", "the change feed lacks %s rev %s (%s)" % (tid, rev, rid))
    for key, ids in feed.items():
        if len(ids) > 1:
            note("feed_doubled", "the change feed has %s rev %d under %s" % (key[0], key[1], sorted(ids)))

    read, pending, lag = progress(r)
    dead = r("XLEN", DEAD)
    if pending or lag or dead:
        problems.append("pending %s, lag %s, dead letters %s" % (pending, lag, dead))
    # A large update's staged task is renamed over the task or deleted by its commit. One is left
    # only when Redis ran the stage's HSET and not the commit: killed in between (its AOF then
    # holds the stage and its TTL). So: none without a TTL, and none but one per bridge per crash.
    stages = r("KEYS", STAGES)
    lasting = [key for key in stages if r("PTTL", key) < 0]
    stray = bool(lasting) or len(stages) > crashes * bridges
    if stray:
        problems.append("%d staged tasks left behind (%d without a TTL), e.g. %s" % (len(stages), len(lasting), text(stages[0])))
    ok = (all(v == 0 for k, v in counts.items() if k != "unpublished_at_crash") and not pending and not lag and not dead
          and not stray)
    return ok, counts, problems, sum(len(v) for v in successes.values())


def summary(counts):
    """The backlog checker's counts, as the scenario's line shows them."""
    crash = counts.get("unpublished_at_crash", 0)
    return (("replies missing %d wrong %d; published missing %d extra %d differing %d; lost %d doubled %d; "
             "revisions %d bodies %d; feed missing %d doubled %d; index wrong %d; out of order %d")
            % (counts["missing"], counts["wrong"], counts["published_missing"], counts["published_extra"],
               counts["published_mismatch"], counts["lost"], counts["doubled"], counts["bad_revision"],
               counts["bad_body"], counts["feed_missing"], counts["feed_doubled"], counts["index_wrong"],
               counts["out_of_order"])
            + ("; %d replies stored but never published, Redis killed before it sent them (allowed)" % crash if crash else ""))


# ---------------------------------------------------------------------------------------------
# A load queued while the fault happens (Sentinel, Cluster)


def judge(producer, replies, updates, hashes, stored, feed):
    """The marker checker, over what was published (`replies`: request id -> payloads; `updates`:
    (id, rev) -> tasks announced) and what Redis holds at the end (`hashes`: task id -> HGETALL;
    `stored`: request id -> stored reply; `feed`: (id, rev) -> request ids of the change feed).
    Every request of the load is valid: an answer but 200 is the bridge's failure."""
    counts = {"lost": 0, "doubled": 0, "unanswered": 0, "inconsistent": 0, "failed": 0}
    problems = []

    def note(kind, message):
        counts[kind] += 1
        if counts[kind] <= 3:
            problems.append(message)

    published_200, bodies_at = {}, {}
    for rid, payloads in replies.items():
        for payload in payloads:
            reply = json.loads(payload)
            if reply.get("status") != 200:
                note("failed", "%s was answered %s: %s" % (rid, reply.get("status"), json.dumps(reply.get("body"))[:200]))
                continue
            published_200.setdefault(rid, set()).add(reply.get("rev"))
            # A repeat is answered with the task as it is then: every answer showing a task at one
            # revision must show the same task.
            shown = (producer.task_of.get(rid), etag_revision(reply))
            bodies_at.setdefault(shown, set()).add(json.dumps(reply.get("body"), sort_keys=True))
    for rid, revs in published_200.items():
        if len(revs) > 1:
            note("doubled", "%s was answered 200 at revisions %s" % (rid, sorted(revs)))
    for (tid, rev), bodies in bodies_at.items():
        if len(bodies) > 1:
            # Applied twice at the same revision (a failover lost the first commit): the two
            # answers differ (the time stamped in modified, at least).
            note("doubled", "%s was answered with %d different tasks at revision %s" % (tid, len(bodies), rev))
    for (tid, rev), tasks in updates.items():
        if len(tasks) > 1:
            note("doubled", "%s rev %s was announced with %d different summaries" % (tid, rev, len(tasks)))
    markers = {}
    for tid, flat in hashes.items():
        fields = pairs(flat)
        keys = marker_keys(json.loads(fields.get("messages", b"[]")))
        for key in keys:
            markers[key] = markers.get(key, 0) + 1
        if int(fields.get("_rev", b"0")) != 1 + len(keys):
            note("inconsistent", "%s: _rev %s with %d markers" % (tid, text(fields.get("_rev")), len(keys)))
    for key, n in markers.items():
        if n > 1:
            note("doubled", "the marker of %s is in its task %d times" % (key, n))
    for rid in published_200:
        if rid not in markers:
            note("lost", "%s was answered 200 (rev %s) but its marker is not in %s" % (rid, sorted(published_200[rid]), producer.task_of.get(rid)))
    for rid in producer.sent:
        if rid not in replies and stored.get(rid) is None:
            note("unanswered", "%s has no reply, published or stored" % rid)
    revs_of = {}
    for (tid, rev), rids in feed.items():
        if len(rids) > 1:
            note("doubled", "the change feed has %s rev %s under %s" % (tid, rev, sorted(rids)))
        for rid in rids:
            revs_of.setdefault(rid, set()).add(rev)
    for rid, revs in revs_of.items():
        if len(revs) > 1:
            note("doubled", "the change feed announces %s at revisions %s" % (rid, sorted(revs)))
    return counts, problems


def etag_revision(reply):
    """The revision of the task a reply's body shows (its ETag); None without one."""
    try:
        return int(str((reply.get("headers") or {}).get("ETag", "")).strip('"'))
    except ValueError:
        return None


def stored_field(value):
    """A TaskStatus property's hash field, as the contract stores it (None: no field)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def same_answer(payload, stored):
    """Whether a published reply is the answer stored: byte for byte for an error, the same status
    and revision for a success (stored without its task)."""
    if payload == stored:
        return True
    published, kept = json.loads(payload), json.loads(stored)
    return (kept.get("status") == 200 and "body" not in kept and published.get("status") == 200
            and published.get("rev") == kept.get("rev") and published.get("requestId") == kept.get("requestId"))


def check_master(port, producer, replies, updates):
    """The marker checker over what the master on `port` holds at the end."""
    r = Redis(port)
    tasks = sorted(set(producer.task_of.values()))
    hashes = dict(zip(tasks, r.pipeline([["HGETALL", task_key(t)] for t in tasks])))
    stored = dict(zip(producer.sent, r.pipeline([["GET", reply_key(producer.task_of[rid], rid)] for rid in producer.sent])))
    return judge(producer, replies, updates, hashes, stored, change_feed(events_of(r)))


def check_cluster(cluster, shards, producer, replies, updates):
    """The marker checker over what a cluster holds at the end, every shard's change feed read."""
    hashes = {}
    for tid in sorted(set(producer.task_of.values())):
        key = task_key(tid)
        hashes[tid] = cluster.call(key, "HGETALL", key)
    stored = {}
    for rid, tid in producer.task_of.items():
        if rid not in replies:
            key = reply_key(tid, rid)
            stored[rid] = cluster.call(key, "GET", key)
    feed = {}
    for k in range(shards):
        stream = shard_events(k)
        change_feed(lambda *args, s=stream: cluster.call(s, args[0], s, *args[1:]), feed)
    return judge(producer, replies, updates, hashes, stored, feed)


def cluster_drained(cluster, shards):
    """Every shard stream read to its end by the group, nothing pending."""
    for k in range(shards):
        stream = shard_stream(k)
        last = pairs(cluster.call(stream, "XINFO", "STREAM", stream)).get("last-generated-id")
        groups = cluster.call(stream, "XINFO", "GROUPS", stream)
        info = next((pairs(g) for g in groups if text(pairs(g).get("name")) == GROUP), None)
        if info is None or info.get("pending") != 0 or info.get("last-delivered-id") != last:
            return False
    return True


def verdict(name, headline, expect_loss, counts, problems, outcome, producer, published, bridge_log, alive, status, elapsed,
            retry_limit, directory, args):
    """Judges a load-and-fault scenario and prints its line: the checker's counts (loss expected or
    none of any kind), the slowest answer within the outcome's bound, the bridge alive, stopped
    with 0, and backing off (no more than `retry_limit` retries a second)."""
    with open(bridge_log, errors="replace") as log:
        retries = sum(1 for line in log if "trying the same entries again" in line)
    latencies = [published.first_reply[rid] - producer.sent[rid] for rid in producer.sent if rid in published.first_reply]
    slowest = max(latencies) if latencies else float("nan")
    # The bound the issues set for a killed master; after a graceful failover the replicas
    # resynchronise first, and nothing is answered before one confirms.
    bound = outcome.get("failover_seconds", 0) + 5 if outcome.get("bounded") else float("inf")
    too_slow = not expect_loss and latencies and slowest > bound
    if too_slow:
        problems.append("the slowest answer took %.1f s, more than the failover (%.1f s) plus 5 s" % (slowest, bound - 5))
    saw_loss = counts["lost"] + counts["doubled"] > 0
    ok = saw_loss if expect_loss else (not saw_loss and counts["unanswered"] == 0 and counts["inconsistent"] == 0
                                       and counts["failed"] == 0 and not too_slow and not outcome.get("problems"))
    busy = retries > retry_limit * elapsed
    passed = ok and alive and status == 0 and not busy
    if busy:
        problems.append("the bridge retried %d times in %.0f s: its back-off does not hold" % (retries, elapsed))
    if not alive:
        problems.append("the bridge exited during the run (see %s)" % directory)
    if status != 0:
        problems.append("the bridge stopped with status %s on SIGTERM" % status)
    label = "%s%s" % (name, " (the checker must see loss)" if expect_loss else "")
    print("%-16s %s  %d requests at %d/s over %.0f s%s; %s; lost %d doubled %d unanswered %d inconsistent %d failed %d; "
          "slowest answer %.2f s; producer re-queued after %d failures; bridge retries %d"
          % (label, "PASS" if passed else "FAIL", len(producer.sent), args.rate, elapsed, headline, outcome.get("what", "no fault"),
             counts["lost"], counts["doubled"], counts["unanswered"], counts["inconsistent"], counts["failed"], slowest,
             producer.errors, retries), flush=True)
    for problem in problems[:12]:
        print("    " + problem, flush=True)
    if not passed or args.keep:
        print("    logs and data: %s" % directory, flush=True)
    return passed


# ---------------------------------------------------------------------------------------------
# The drain over time


class DrainWatch(threading.Thread):
    """Samples, every `every` seconds on a connection of its own, how many entries the group has
    acknowledged (read minus pending): when the drain stopped and when it went on."""

    def __init__(self, port, every=0.05):
        super().__init__(daemon=True)
        self.port, self.every = port, every
        self.samples = []  # (monotonic time, acknowledged)
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self):
        r = None
        while not self.stop.is_set():
            try:
                r = r or Redis(self.port, timeout=2)
                read, pending, _ = progress(r)
                if pending is not None:
                    with self.lock:
                        self.samples.append((time.monotonic(), read - pending))
            except (OSError, ConnectionError, RedisError):
                if r:
                    r.close()
                r = None
            self.stop.wait(self.every)
        if r:
            r.close()

    def acked(self, at=None):
        """Entries acknowledged at time `at` (the last sample before it), or now."""
        with self.lock:
            samples = list(self.samples)
        value = 0
        for t, n in samples:
            if at is not None and t > at:
                break
            value = n
        return value

    def recovered(self, since, until, total, still=1.0, grace=0.1):
        """Seconds from `since` until the drain went on for good: the first rise of the count
        after the last time, in [since, until], that it stood still `still` seconds or more. So a
        drain that goes on, then stops again on the next silent connection, has recovered only
        when it goes on the second time; and the acknowledgement of a batch sent before a pause
        and delivered as it ends is no recovery if nothing follows it. What is acknowledged in the
        first `grace` seconds was sent before the fault (the bridge backs off at least 100 ms
        after a failure): a rise counts from then on. None if the count never rose after
        `since`, or stood still at `until` (or now) without having reached `total`."""
        with self.lock:
            samples = [(t, n) for t, n in self.samples if t > since + grace and (until is None or t <= until)]
        last_rise, count, recovered = since, self.acked(since + grace), None
        for t, n in samples:
            if n > count:
                if recovered is None or t - last_rise >= still:
                    recovered = t - since
                last_rise, count = t, n
            if n >= total:
                return recovered
        if not samples or samples[-1][0] - last_rise >= still:
            return None
        return recovered

    def longest_stall(self, start, end, total):
        """The longest time in [start, end] (or until all `total` were acknowledged) in which the
        count did not rise."""
        with self.lock:
            samples = [(t, n) for t, n in self.samples if start <= t <= end]
        if not samples:
            return end - start
        longest, last_rise, last = 0.0, start, samples[0][1]
        for t, n in samples:
            if n > last:
                longest, last_rise, last = max(longest, t - last_rise), t, n
            if n >= total:
                return longest
        return max(longest, samples[-1][0] - last_rise)
