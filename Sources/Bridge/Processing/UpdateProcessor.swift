//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import Logging
import Metrics
import Redis
import TaskStatus

/// Decides, commits and announces batches of requests over one blocking connection; the stream
/// consumer and the HTTP API each drive one from a thread of their own, so that they share one
/// engine and one atomic commit.
///
/// One batch, top-down (``process(_:acknowledging:)``), each step a part of its own:
/// 1. ``RateLimitGate``: the requests over their caller's rate limit are answered 429; then
///    ``Batch`` plans the rest: repeats of a request id, requests answered without their task,
///    one group per task;
/// 2. in rounds (``RoundPolicy``), until every request is answered or deferred: ``TaskLoader``
///    finds the tasks the batch does not know (its cache, else one pipelined `HGETALL`), and
///    ``CommitRound`` decides each group's requests in order and commits them, one round trip;
/// 3. the path's ``Announcer``: the change-feed entries, the notifications of replies found
///    stored, the replies and, on the stream, the `XACK` (one `MULTI`/`EXEC` sent without
///    waiting; its answer is read with the next round trip's; on HTTP too, on one Redis).
///
/// Redis refusing for a while (memory full, a failover, a lost connection) is never a request's
/// fault: a refused request is deferred, neither answered nor acknowledged, and tried again by
/// the caller. Not thread-safe: it belongs to one thread.
final class UpdateProcessor {
    let link: RedisLink
    private let keys: Keys
    private let policy: RoundPolicy
    private var gate: RateLimitGate
    private var loader: TaskLoader
    private var round: CommitRound
    private var announcer: any Announcer
    private let lister: TaskLister
    /// The batch whose first commit round is in flight (see ``completeInFlight()``), with the
    /// entries it acknowledges.
    private var inFlight: (batch: Batch, extraAcks: [String])?

    init(link: RedisLink, configuration: BridgeConfiguration, logger: Logger, metrics: BridgeMetrics, path: BridgeMetrics.Path) {
        self.link = link
        self.keys = configuration.keys
        self.policy = path == .stream ? .stream : .http
        self.gate = RateLimitGate(configuration: configuration, metrics: metrics)
        self.loader = TaskLoader(configuration: configuration, logger: logger)
        self.round = CommitRound(configuration: configuration, logger: logger, metrics: metrics, announcing: path == .stream)
        self.lister = TaskLister(configuration: configuration, logger: logger)
        self.announcer =
            path == .stream
            ? StreamAnnouncer(configuration: configuration, logger: logger, metrics: metrics)
            : HTTPAnnouncer(configuration: configuration, logger: logger, metrics: metrics)
    }

    /// A processor on a connection of its own.
    convenience init(configuration: BridgeConfiguration, logger: Logger, metrics: BridgeMetrics, path: BridgeMetrics.Path) {
        self.init(
            link: RedisLink(configuration: configuration.committingRedis),
            configuration: configuration,
            logger: logger,
            metrics: metrics,
            path: path
        )
    }

    /// Processes requests (in order per task), then acknowledges the stream entries of those
    /// answered and `extraAcks` (entries with nothing to answer). A thrown error means the
    /// connection failed mid-batch: what was committed has stored replies, the rest nothing, and
    /// no answer went out for either.
    ///
    /// On the stream, a batch whose commits all announce themselves is returned once they are
    /// sent, unread (``isInFlight``): the script answers and acknowledges each request as it
    /// commits, and ``completeInFlight()`` reads what Redis made of them before the link is used
    /// again. A batch in flight is completed first; when some of its requests were deferred,
    /// it is returned instead and `requests` are left unprocessed (still pending, to be
    /// processed again in order after them).
    func process(_ requests: [PatchRequest], acknowledging extraAcks: [String] = []) throws(RedisError) -> Batch {
        try noticingLoss { () throws(RedisError) in
            if let earlier = try completeBatchInFlight(), !earlier.deferrals.isEmpty { return earlier }
            return try processBatch(requests, acknowledging: extraAcks)
        }
    }

    /// Whether a batch's commit is in flight, its answer not read yet.
    var isInFlight: Bool { inFlight != nil }

    /// Reads the answer of the commit in flight and finishes its batch: requests Redis did not
    /// commit (the task moved, a reply was stored before) are decided again, and what the script
    /// did not announce is announced. Returns the batch (its deferrals: what was not answered),
    /// or `nil` when none was in flight.
    func completeInFlight() throws(RedisError) -> Batch? {
        try noticingLoss { () throws(RedisError) in try completeBatchInFlight() }
    }

    private func completeBatchInFlight() throws(RedisError) -> Batch? {
        guard var (batch, extraAcks) = inFlight else { return nil }
        inFlight = nil
        do {
            try round.complete(&batch, loader: &loader, on: link)
        } catch {
            // What the commits did is unknown: the tasks are read again.
            for group in batch.groups { loader.forget(group.taskId) }
            throw error
        }
        try runRounds(&batch, after: 1)
        return try finish(&batch, acknowledging: extraAcks)
    }

    /// Runs `body`; when the connection failed in it, tells the announcer, whose announcements
    /// sent without waiting may then not have run.
    private func noticingLoss<T>(_ body: () throws(RedisError) -> T) throws(RedisError) -> T {
        do {
            return try body()
        } catch {
            if error.isConnectionFailure { announcer.connectionFailed() }
            throw error
        }
    }

    private func processBatch(_ requests: [PatchRequest], acknowledging extraAcks: [String]) throws(RedisError) -> Batch {
        var batch = Batch(requests)
        try gate.limit(&batch, on: link)
        batch.formGroups()
        if batch.hasOpenWork {
            try loader.load(&batch, on: link)
            if try round.run(&batch, loader: &loader, on: link, now: RFC3339.now(), mayLeaveInFlight: policy.leavesCommitsInFlight) {
                batch.sentAt = Int64(RFC3339.unixMilliseconds())
                inFlight = (batch, extraAcks)
                return batch
            }
            try runRounds(&batch, after: 1)
        }
        return try finish(&batch, acknowledging: extraAcks)
    }

    /// The rounds after the first `done`, until every request is answered or deferred.
    private func runRounds(_ batch: inout Batch, after done: Int) throws(RedisError) {
        var rounds = done
        policy.pause(after: rounds, openTasks: !batch.groups.isEmpty)
        while batch.hasOpenWork && rounds < policy.maxRounds {
            rounds += 1
            try loader.load(&batch, on: link)
            try round.run(&batch, loader: &loader, on: link, now: RFC3339.now())
            policy.pause(after: rounds, openTasks: !batch.groups.isEmpty)
        }
    }

    /// Defers what the rounds left open, answers the repeats and announces the batch.
    private func finish(_ batch: inout Batch, acknowledging extraAcks: [String]) throws(RedisError) -> Batch {
        if batch.hasOpenWork {
            batch.deferOpenWork(
                Deferral(.contended, "the task was written by others \(policy.maxRounds) times in a row while this update was decided")
            )
        }
        batch.answerRepeats()
        try announcer.announce(batch, acknowledging: extraAcks, on: link)
        return batch
    }

    /// Reads one task as the HTTP API's GET answers it: 200 with the TaskStatus and its ETag,
    /// 404, 500 for a task that does not decode, or 429 over the caller's rate limit. Redis
    /// refusing is thrown.
    func read(taskId: String, rateLimitKey: String?) throws(RedisError) -> TaskResponse {
        try noticingLoss { () throws(RedisError) in try readTask(taskId: taskId, rateLimitKey: rateLimitKey) }
    }

    private func readTask(taskId: String, rateLimitKey: String?) throws(RedisError) -> TaskResponse {
        if let refusal = try overLimit(rateLimitKey, taskId: taskId) { return refusal }
        guard PatchRequest.isValidTaskId(taskId) else {
            return .error(400, PatchRequest.taskIdRule)
        }
        let reply = try link.execute(RedisPipeline([RedisCommand("HGETALL", keys.task(taskId))]))[0]
        if let message = reply.errorMessage, RedisError.isTransient(serverError: message) {
            throw RedisError(code: .serverError, message: message)
        }
        switch loader.decode(hash: reply.reply, taskId: taskId) {
        case .record(let record):
            return TaskResponse(status: 200, headers: [("ETag", "\"\(record.rev)\"")], body: record.json, rev: record.rev)
        case .absent, .unknown:
            return .error(404, "there is no task with id \(taskId)")
        case .corrupt(_, let reason):
            return .error(500, "the stored task \(taskId) cannot be read: \(reason)")
        }
    }

    /// The 429 of a read (a GET or a list) over its caller's rate limit; `nil` within it. Reads
    /// count against the same budget as updates, through the same gate.
    private func overLimit(_ rateLimitKey: String?, taskId: String = "") throws(RedisError) -> TaskResponse? {
        var probe = Batch([PatchRequest(taskId: taskId, requestId: "", patch: nil, patchJSON: [], storesReply: false, rateLimitKey: rateLimitKey)])
        try gate.limit(&probe, on: link)
        return probe.requests[0].rejection
    }

    /// Lists tasks as the HTTP API's `GET /task-status` answers: 200 with a JSON array of
    /// TaskStatus, `X-Last-Event-Id` and (when asked) `X-Total-Count`, or 429 over the caller's
    /// rate limit. Redis refusing is thrown.
    func list(_ query: ListQuery, rateLimitKey: String?) throws(RedisError) -> TaskResponse {
        try noticingLoss { () throws(RedisError) in
            if let refusal = try overLimit(rateLimitKey) { return refusal }
            let page = try lister.list(query, on: link)
            var body: [UInt8] = [UInt8(ascii: "[")]
            body.reserveCapacity(page.tasks.reduce(2) { $0 + $1.json.count + 1 })
            for (k, task) in page.tasks.enumerated() {
                if k > 0 { body.append(UInt8(ascii: ",")) }
                body.append(contentsOf: task.json)
            }
            body.append(UInt8(ascii: "]"))
            var headers = [("X-Last-Event-Id", page.position)]
            if let total = page.total { headers.append(("X-Total-Count", String(total))) }
            return TaskResponse(status: 200, headers: headers, body: body)
        }
    }

    /// Whether announcements Redis refused are waiting to be sent again (HTTP).
    var hasOwedAnnouncements: Bool { announcer.hasOwed }

    /// Sends the announcements Redis refused before (HTTP), with nothing new.
    func retryOwedAnnouncements() throws(RedisError) {
        try announcer.retryOwed(on: link)
    }

    /// Takes the failure of announcements sent without waiting (stream), read by now: their
    /// entries are still pending and must be processed again.
    func takeAnnouncementFailure() -> String? {
        announcer.takeFailure(on: link)
    }

    /// Waits until Redis has answered the commit in flight and the announcements sent so far;
    /// their failures are then known to ``takeAnnouncementFailure()``. Requests of the batch in
    /// flight that end deferred fail it.
    func settle() throws(RedisError) {
        if let batch = try completeInFlight(), let deferral = batch.deferrals.values.first {
            throw RedisError(code: .serverError, message: deferral.message)
        }
        try announcer.settle(on: link)
    }

    /// Forgets every cached task and the scripts (after Redis may have lost its data). A commit
    /// in flight is read first (the link must not be left owing its answer), whatever it says:
    /// its entries are still pending when it failed.
    func forgetCachedTasks() {
        _ = try? completeInFlight()
        loader.forgetAll()
        round.forgetScript()
        gate.forgetScript()
    }
}
