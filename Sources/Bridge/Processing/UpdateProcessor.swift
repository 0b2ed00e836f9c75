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

#if canImport(Glibc)
import Glibc
#endif

/// Decides, commits and announces batches of requests over one blocking connection; the stream
/// consumer and the HTTP API each drive one from a thread of their own, so that they share one
/// engine and one atomic commit.
///
/// One batch, top-down (``process(_:acknowledging:)``):
/// 1. plan: find the repeats of a request id (they get their first copy's answer), check rate limits,
///    sort the rest into requests answered without their task and one group per task;
/// 2. in rounds, until every request is answered or deferred:
///    load the tasks the batch does not know (the cache, else one pipelined `HGETALL`); decide each
///    group's requests in order and build its ``CommitScript/Call``; send every commit in one round
///    trip; read the answers: committed, answered before (a stored reply: answered from it),
///    revision moved (decide again on the task it hands back), or refused (deferred);
/// 3. announce: the change-feed entries, the notifications of replies found stored, the replies on
///    their `reply-to` channels and the `XACK`, in one round trip (on the stream, one
///    `MULTI`/`EXEC` sent without waiting; its answer is read with the next round trip's).
///
/// Redis refusing for a while (memory full, a failover, a lost connection) is never a request's
/// fault: a refused request is deferred, neither answered nor acknowledged, and tried again by
/// the caller. Not thread-safe: it belongs to one thread.
final class UpdateProcessor {
    let link: RedisLink
    private let keys: Keys
    private let evaluator: UpdateEvaluator
    private let logger: Logger
    private let metrics: BridgeMetrics
    private let path: BridgeMetrics.Path
    private var cache: TaskCache
    private var commitSHA: String?
    private var rateLimitSHA: String?
    private let rateLimiter: RateLimiter?
    private let context: CommitScript.Context
    private let words: Words
    /// The change feed's cap, by entries and by bytes.
    private var feedBound: FeedBound
    /// Notifications carry the whole task up to this size.
    private let wholeTaskLimit: Int
    /// The round trips' buffers, kept from batch to batch.
    private var commitPipeline = RedisPipeline()
    private var announcePipeline = RedisPipeline()
    /// On the stream: why an announcement sent without waiting failed (its entries stay pending).
    private var announcementFailure: String?
    /// On HTTP: announcements Redis refused after their commit, sent again before the next ones.
    private var owedAnnouncements: [RedisCommand] = []

    /// Rounds of deciding again (revision conflicts, scripts lost) before the open requests are
    /// deferred: the stream backs off between rounds on its own thread; HTTP, whose thread serves
    /// every HTTP request, never sleeps and defers sooner (503 with `Retry-After`).
    private let maxRounds: Int

    /// With `--min-replicas` above 0: how many replicas must confirm each round of commits, and
    /// the `WAIT` that asks them, written once.
    private let replication: ReplicationCheck?

    /// Most announcements kept for a retry on HTTP; past it the oldest are dropped (and logged).
    static let owedLimit = 10_000

    init(link: RedisLink, configuration: BridgeConfiguration, logger: Logger, metrics: BridgeMetrics, path: BridgeMetrics.Path) {
        self.link = link
        self.path = path
        self.metrics = metrics
        self.keys = configuration.keys
        self.evaluator = UpdateEvaluator(writableProperties: configuration.writableProperties)
        self.logger = logger
        self.cache = TaskCache(capacity: configuration.cacheSize)
        self.rateLimiter =
            configuration.rateLimit.enabled
            ? RateLimiter(configuration: configuration.rateLimit, keyPrefix: "\(configuration.prefix):ratelimit:{") : nil
        self.replication = ReplicationCheck(configuration: configuration)
        self.context = CommitScript.Context(
            keys: configuration.keys,
            replyTTL: String(max(1, configuration.replyTTL.components.seconds)),
            updatesChannel: configuration.pubsub == .sharded ? [] : Array(configuration.keys.updates.utf8),
            publishesNotifications: configuration.minReplicas == 0
        )
        self.words = Words(keys: configuration.keys, shards: configuration.shards)
        self.feedBound = FeedBound(maxEntries: configuration.eventsMaxLength, maxBytes: configuration.eventsMaxBytes)
        self.wholeTaskLimit = configuration.wholeTaskMaxBytes
        self.maxRounds = path == .stream ? 50 : 8
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
    func process(_ requests: [PatchRequest], acknowledging extraAcks: [String] = []) throws(RedisError) -> Batch {
        var batch = Batch(requests)
        try limitRates(&batch)
        batch.formGroups()
        var round = 0
        while batch.hasOpenWork && round < maxRounds {
            round += 1
            try loadTasks(&batch)
            try commit(&batch, now: RFC3339.now())
            // Writers that keep colliding on a task take turns: a short random pause, growing with
            // the rounds, lets the others through (on the stream's own thread only).
            if path == .stream, !batch.groups.isEmpty, round >= 2 {
                usleep(UInt32.random(in: 0...UInt32(min(round, 20) * 500)))
            }
        }
        if batch.hasOpenWork {
            batch.deferOpenWork(reason: "the task was written by others \(maxRounds) times in a row while this update was decided")
        }
        batch.answerRepeats()
        try announce(batch, acknowledging: extraAcks)
        return batch
    }

    // MARK: - Rate limits

    /// Answers 429, with `Retry-After`, the requests over their caller's rate limit (one round
    /// trip for the batch, when limits are on).
    private func limitRates(_ batch: inout Batch) throws(RedisError) {
        guard let rateLimiter else { return }
        var order: [String] = []
        var members: [String: [Int]] = [:]
        for i in batch.primaries {
            guard batch.requests[i].rejection == nil, let key = batch.requests[i].rateLimitKey else { continue }
            if members[key] == nil { order.append(key) }
            members[key, default: []].append(i)
        }
        // Twice at most: Redis may have lost the script (SCRIPT FLUSH, a restart), and the
        // callers it could not check are checked again once it is loaded, not let through.
        for _ in 0..<2 where !order.isEmpty {
            if rateLimitSHA == nil {
                rateLimitSHA = try link.execute(RedisCommand("SCRIPT", "LOAD", RateLimiter.script)).string
            }
            var pipeline = RedisPipeline()
            rateLimiter.addChecks(for: order.map { ($0, members[$0]?.count ?? 0) }, sha: rateLimitSHA ?? "", to: &pipeline)
            let replies = try link.execute(pipeline).all
            var unchecked: [String] = []
            for (key, reply) in zip(order, replies) {
                if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
                    rateLimitSHA = nil
                    unchecked.append(key)
                    continue
                }
                let indices = members[key] ?? []
                let decision = RateLimiter.decision(reply, count: indices.count)
                for i in indices.dropFirst(decision.admitted) {
                    batch.reject(i, with: .error(429, "", headers: [("Retry-After", String(decision.retryAfter))]))
                    metrics.rateLimited.increment()
                }
            }
            order = unchecked
        }
    }

    /// Reads one task as the HTTP API's GET answers it: 200 with the TaskStatus and its ETag,
    /// 404, 500 for a task that does not decode, or 429 over the caller's rate limit. Redis
    /// refusing is thrown.
    func read(taskId: String, rateLimitKey: String?) throws(RedisError) -> TaskResponse {
        var probe = Batch([PatchRequest(taskId: taskId, requestId: "", patch: nil, patchJSON: [], storesReply: false, rateLimitKey: rateLimitKey)])
        try limitRates(&probe)
        if let rejection = probe.requests[0].rejection { return rejection }
        guard PatchRequest.isValidTaskId(taskId) else {
            return .error(400, PatchRequest.taskIdRule)
        }
        let reply = try link.execute(RedisPipeline([RedisCommand("HGETALL", keys.task(taskId))]))[0]
        if let message = reply.errorMessage, RedisError.isTransient(serverError: message) {
            throw RedisError(code: .serverError, message: message)
        }
        switch decode(hash: reply.reply, taskId: taskId) {
        case .record(let record):
            return TaskResponse(status: 200, headers: [("ETag", "\"\(record.rev)\"")], body: record.json, rev: record.rev)
        case .absent, .unknown:
            return .error(404, "there is no task with id \(taskId)")
        case .corrupt(_, let reason):
            return .error(500, "the stored task \(taskId) cannot be read: \(reason)")
        }
    }

    // MARK: - Loading tasks

    /// Fills in the tasks the batch does not know yet: from the cache, else read in one round trip.
    private func loadTasks(_ batch: inout Batch) throws(RedisError) {
        var missing: [Int] = []
        for g in batch.groups.indices {
            guard case .unknown = batch.groups[g].state else { continue }
            if let record = cache[batch.groups[g].taskId] {
                batch.groups[g].state = .record(record)
            } else {
                missing.append(g)
            }
        }
        guard !missing.isEmpty else { return }
        var pipeline = RedisPipeline()
        for g in missing {
            pipeline.begin("HGETALL")
            pipeline.add(joining: keys.taskPrefix, batch.groups[g].taskId, "}")
        }
        let replies = try link.execute(pipeline)
        var refused: [Int] = []
        for (k, g) in missing.enumerated() {
            if let message = replies[k].errorMessage, RedisError.isTransient(serverError: message) {
                refused.append(g)
                deferGroup(batch.groups[g], in: &batch, reason: message)
                continue
            }
            batch.groups[g].state = decode(hash: replies[k].reply, taskId: batch.groups[g].taskId)
        }
        for g in refused.reversed() { batch.groups.remove(at: g) }
    }

    private func decode(hash reply: RedisReply, taskId: String) -> Batch.TaskState {
        if case .error(let message) = reply {
            logger.error("a stored task cannot be read", metadata: ["redis.key": "\(keys.task(taskId))", "redis.error": "\(message)"])
            return .corrupt(rev: "", reason: message)
        }
        guard let pairs = reply.pairs else { return .corrupt(rev: "", reason: "unexpected reply \(reply)") }
        return decode(pairs: pairs, taskId: taskId)
    }

    private func decode(pairs: [(field: [UInt8], value: [UInt8])], taskId: String) -> Batch.TaskState {
        do {
            guard let record = try TaskRecord(hash: pairs) else {
                cache.remove(taskId)
                return .absent
            }
            cache.store(record, for: taskId)
            return .record(record)
        } catch {
            cache.remove(taskId)
            let rev = pairs.first { $0.field == Array(TaskProperty.revisionField.utf8) }.map { String(decoding: $0.value, as: UTF8.self) } ?? ""
            logger.error(
                "a stored task is corrupt",
                metadata: ["redis.key": "\(keys.task(taskId))", "task.field": "\(error.field)", "error": "\(error.reason)"]
            )
            return .corrupt(rev: rev, reason: error.description)
        }
    }

    // MARK: - Deciding and committing

    /// One round: stores the answers decided without a task, decides every group and sends its
    /// commit, in one round trip; then reads what Redis made of each.
    private func commit(_ batch: inout Batch, now: String) throws(RedisError) {
        var pipeline = commitPipeline
        commitPipeline = RedisPipeline()
        pipeline.removeAll()
        defer { commitPipeline = pipeline }
        // Requests decided without their task: stored unless a reply is stored already (a 429
        // is not stored at all).
        var stored: [Int] = []
        for i in batch.early {
            let request = batch.requests[i]
            let response = request.rejection ?? .error(400, PatchRequest.taskIdRule)
            let answer = Batch.Answer(response, for: request)
            batch.answer(i, answer)
            guard request.storesReply else { continue }
            stored.append(i)
            if response.status == 429 {
                // Not stored: the request was not processed, and its retry after Retry-After,
                // under the same request id, must be. A reply an earlier copy stored still wins.
                pipeline.begin("GET")
                pipeline.add(joining: keys.replyPrefix, request.taskId, "}:", request.requestId)
                continue
            }
            pipeline.begin("SET")
            pipeline.add(joining: keys.replyPrefix, request.taskId, "}:", request.requestId)
            answer.reply.add(to: &pipeline)
            for word in ["NX", "GET", "EX", context.replyTTL] { pipeline.add(word) }
        }
        batch.early = []
        let sha = batch.groups.isEmpty ? "" : try commitScript()
        var decided: [Decision] = []
        decided.reserveCapacity(batch.groups.count)
        // Where each group's `EVALSHA` answers (a large update stages its task first).
        var answerAt: [Int] = []
        answerAt.reserveCapacity(batch.groups.count)
        for group in batch.groups {
            let decision = decide(group, batch.requests, now: now)
            answerAt.append(pipeline.count + CommitScript.add(decision.call, sha: sha, context: context, to: &pipeline) - 1)
            decided.append(decision)
        }
        guard !pipeline.isEmpty else { return }
        let replies: RedisReplies
        var shortfall: String?
        if let replication {
            (replies, shortfall) = try replication.execute(pipeline, on: link, confirming: "the commits")
        } else {
            replies = try link.execute(pipeline)
        }
        // Nothing of the batch becomes visible unless the replicas confirmed this round.
        if let shortfall {
            for group in batch.groups { cache.remove(group.taskId) }
            batch.deferEverything(reason: shortfall)
            return
        }
        var storedSuccesses: [(index: Int, reply: [UInt8])] = []
        for (k, i) in stored.enumerated() {
            let reply = replies[k]
            if let bytes = reply.bytes, reply.kind == .bulk {
                if Batch.Answer.needsTask(stored: Array(bytes)) {
                    storedSuccesses.append((i, Array(bytes)))
                } else {
                    batch.answer(i, Batch.Answer(stored: Array(bytes), for: batch.requests[i], current: nil, wholeTaskLimit: wholeTaskLimit))
                }
            } else if let message = reply.errorMessage {
                if RedisError.isTransient(serverError: message) {
                    batch.defer(i, reason: message)
                } else {
                    logger.error("storing a reply failed", metadata: ["redis.error": "\(message)", "request.id": "\(batch.requests[i].requestId)"])
                }
            }
        }
        let groups = batch.groups
        batch.groups = []
        for (g, var group) in groups.enumerated() {
            let answer = CommitScript.decode(replies[answerAt[g]], requestCount: group.indices.count)
            switch answer {
            case .committed:
                // The answers' parts move out of the call that stored them: no copies.
                for (k, i) in group.indices.enumerated() {
                    var answer = Batch.Answer.unanswered
                    swap(&answer.response, &decided[g].responses[k])
                    swap(&answer.reply, &decided[g].call.requests[k].reply)
                    swap(&answer.notification, &decided[g].call.requests[k].notification)
                    // Published with the announcements when the script could not (replicas first).
                    answer.needsPublishing = !context.publishesNotifications
                    batch.answer(i, moving: &answer)
                }
                if let record = decided[g].call.update?.record { cache.store(record, for: group.taskId) }
            case .answeredBefore(let found, let hash):
                // The task as it is now answers the stored successes and decides the rest.
                group.state = decode(pairs: hash.map { ($0.field, $0.value) }, taskId: group.taskId)
                var current: TaskRecord?
                if case .record(let record) = group.state { current = record }
                var answered: [Int] = []
                for entry in found {
                    let i = group.indices[entry.position]
                    batch.answer(i, Batch.Answer(stored: entry.reply, for: batch.requests[i], current: current, wholeTaskLimit: wholeTaskLimit))
                    answered.append(i)
                }
                metrics.redeliveries.increment(by: answered.count)
                group.indices.removeAll { answered.contains($0) }
                if !group.indices.isEmpty { batch.groups.append(group) }
            case .revisionMoved(let hash):
                metrics.conflicts.increment()
                group.state = decode(pairs: hash.map { ($0.field, $0.value) }, taskId: group.taskId)
                batch.groups.append(group)
            case .stageMissing:
                deferGroup(group, in: &batch, reason: "Redis did not keep the staged task (memory full?)")
            case .failed(let message):
                if message.hasPrefix("NOSCRIPT") {
                    // Redis lost its scripts (SCRIPT FLUSH, a restart): load it again next round.
                    commitSHA = nil
                    batch.groups.append(group)
                } else if RedisError.isTransient(serverError: message) {
                    deferGroup(group, in: &batch, reason: message)
                } else {
                    // Not Redis's state for now but this task (a key of another type) or a bug:
                    // answered 500, like a corrupt task, so that one task cannot stall the rest.
                    logger.error("committing an update failed", metadata: ["task.id": "\(group.taskId)", "redis.error": "\(message)"])
                    for i in group.indices { batch.reject(i, with: .error(500, "the update could not be committed: \(message)")) }
                    batch.early += group.indices
                }
            }
        }
        try answerStoredSuccesses(storedSuccesses, in: &batch)
    }

    /// Answers the requests decided without their task whose earlier copy was answered 200: a
    /// success is stored without its task, which is read now (one round trip; rare).
    private func answerStoredSuccesses(_ found: [(index: Int, reply: [UInt8])], in batch: inout Batch) throws(RedisError) {
        guard !found.isEmpty else { return }
        var pipeline = RedisPipeline()
        for (i, _) in found {
            pipeline.begin("HGETALL")
            pipeline.add(joining: keys.taskPrefix, batch.requests[i].taskId, "}")
        }
        let replies = try link.execute(pipeline)
        for (k, (i, reply)) in found.enumerated() {
            if let message = replies[k].errorMessage, RedisError.isTransient(serverError: message) {
                batch.defer(i, reason: message)
                continue
            }
            var current: TaskRecord?
            if case .record(let record) = decode(hash: replies[k].reply, taskId: batch.requests[i].taskId) { current = record }
            batch.answer(i, Batch.Answer(stored: reply, for: batch.requests[i], current: current, wholeTaskLimit: wholeTaskLimit))
        }
    }

    private func deferGroup(_ group: Batch.TaskGroup, in batch: inout Batch, reason: String) {
        cache.remove(group.taskId)
        for i in group.indices { batch.defer(i, reason: reason) }
    }

    /// One group's responses, decided in order, and the commit call that stores them (which
    /// holds each reply and notification: the answers are made of them once committed).
    private struct Decision {
        var responses: [TaskResponse]
        var call: CommitScript.Call
    }

    /// Decides one task's requests in order against the task as the batch knows it.
    private func decide(_ group: Batch.TaskGroup, _ requests: [PatchRequest], now: String) -> Decision {
        var record: TaskRecord?
        var expectedRev = ""
        var corruption: String?
        switch group.state {
        case .record(let r):
            record = r
            expectedRev = String(r.rev)
        case .corrupt(let rev, let reason):
            expectedRev = rev
            corruption = reason
        case .absent, .unknown:
            break
        }
        let startRev = record?.rev
        var responses: [TaskResponse] = []
        responses.reserveCapacity(group.indices.count)
        var call = CommitScript.Call(taskId: group.taskId, expectedRev: expectedRev, update: nil, requests: [])
        call.requests.reserveCapacity(group.indices.count)
        var changed = TaskPropertySet()
        for i in group.indices {
            let evaluation: Evaluation
            if let corruption {
                evaluation = .failed(.error(500, "the stored task \(group.taskId) cannot be read: \(corruption)"))
            } else {
                evaluation = evaluator.evaluate(requests[i], on: record, now: now)
            }
            let response = evaluation.response
            var notification: CommitScript.Payload?
            if case .updated(let updated, let fields, _) = evaluation {
                record = updated
                changed.formUnion(fields)
                // The script publishes it with the commit.
                notification = .whole(
                    UpdateNotification.json(
                        taskId: group.taskId,
                        rev: updated.rev,
                        requestId: requests[i].requestId,
                        patch: requests[i].patchJSON,
                        summary: updated.summaryJSON,
                        task: updated.json.count <= wholeTaskLimit ? updated.json : nil
                    )
                )
            }
            call.requests.append(
                CommitScript.Call.Request(
                    requestId: requests[i].requestId,
                    reply: .framed(head: response.replyHead(requestId: requests[i].requestId, taskId: group.taskId), body: response.body),
                    storedReply: requests[i].storesReply ? response.storedReplyJSON(requestId: requests[i].requestId, taskId: group.taskId) : nil,
                    notification: notification
                )
            )
            responses.append(response)
        }
        if let record, record.rev != startRev { call.update = (record, changed) }
        return Decision(responses: responses, call: call)
    }

    /// The SHA of the commit script, loading it when Redis does not have it.
    private func commitScript() throws(RedisError) -> String {
        if let commitSHA { return commitSHA }
        let reply = try link.execute(RedisPipeline([RedisCommand("SCRIPT", "LOAD", CommitScript.text)]))[0]
        if let message = reply.errorMessage { throw RedisError(code: .serverError, message: message) }
        guard let sha = reply.string else { throw RedisError(code: .unexpectedReply, message: "SCRIPT LOAD did not answer a SHA") }
        commitSHA = sha
        return sha
    }

    // MARK: - Announcing

    /// Appends the change-feed entries, publishes the notifications the script did not (replies
    /// found stored), publishes the replies and acknowledges the answered entries, in one round
    /// trip. On the stream it is one `MULTI`/`EXEC`, sent without waiting: either all of it
    /// happens or none (a refused change-feed entry must not be acknowledged), and a failure,
    /// read with the next round trip, leaves the entries pending for the consumer to try again.
    private func announce(_ batch: Batch, acknowledging extraAcks: [String]) throws(RedisError) {
        var pipeline = announcePipeline
        announcePipeline = RedisPipeline()
        pipeline.removeAll()
        defer { announcePipeline = pipeline }
        let transaction = path == .stream
        // On a cluster, shard channels are not in the transaction's slot: their messages go
        // first, on their own nodes, and the transaction (the acknowledgements) only once they
        // went out. One Redis takes them inside the transaction.
        let sharded = keys.shardedPubSub
        let apart = sharded && transaction && link.routesBySlot
        var publications = RedisPipeline()
        func addMessage(_ body: (inout RedisPipeline) -> Void) {
            if apart { body(&publications) } else { body(&pipeline) }
        }
        if transaction { pipeline.begin(Words.multi) }
        let header = pipeline.count
        if !transaction { for command in owedAnnouncements { pipeline.append(command) } }
        let owed = owedAnnouncements.count
        owedAnnouncements = []
        let nowMilliseconds = Int64(RFC3339.unixMilliseconds())
        var tally = RequestTally()
        var acks: [String] = []
        let deferring = !batch.deferrals.isEmpty
        let publish = sharded ? Words.spublish : Words.publish
        // The answers are read in place, not copied: each holds several buffers.
        for i in batch.requests.indices where batch.answers[i].response.status != 0 {
            if deferring, batch.deferrals[i] != nil { continue }
            if let rev = batch.answers[i].response.rev, batch.answers[i].notification != nil {
                if batch.answers[i].needsPublishing {
                    if !sharded {
                        pipeline.begin(Words.publish)
                        pipeline.add(words.updates)
                        CommitScript.Payload.add(batch.answers[i].notification, orEmptyTo: &pipeline)
                    }
                    addMessage { messages in
                        messages.begin(publish)
                        messages.add(joining: keys.updatesPrefix, batch.requests[i].taskId, keys.updatesSuffix)
                        CommitScript.Payload.add(batch.answers[i].notification, orEmptyTo: &messages)
                    }
                }
                pipeline.begin(Words.xadd)
                // On the stream, the consumer's shard; on HTTP, the task's.
                pipeline.add(
                    transaction || words.shardEvents.isEmpty
                        ? words.events : words.shardEvents[keys.shard(ofTask: batch.requests[i].taskId, count: words.shardEvents.count)]
                )
                pipeline.add(Words.maxlen)
                pipeline.add(Words.approximately)
                pipeline.add(feedBound.lengthText(adding: batch.answers[i].notification?.count ?? 0))
                pipeline.add(Words.newId)
                pipeline.add(Words.id)
                pipeline.add(batch.requests[i].taskId)
                pipeline.add(Words.rev)
                pipeline.add(rev)
                pipeline.add(Words.requestId)
                pipeline.add(batch.requests[i].requestId)
                pipeline.add(Words.event)
                CommitScript.Payload.add(batch.answers[i].notification, orEmptyTo: &pipeline)
            }
            if let replyTo = batch.requests[i].replyTo {
                addMessage { messages in
                    messages.begin(publish)
                    messages.add(replyTo)
                    batch.answers[i].reply.add(to: &messages)
                }
            }
            if let entryId = batch.requests[i].entryId {
                acks.append(entryId)
                if let created = StreamEntry.parse(entryId).map({ Int64(clamping: $0.ms) }), created <= nowMilliseconds {
                    metrics.streamLatency.recordMilliseconds(nowMilliseconds - created)
                }
            }
            tally.count(path: path, status: batch.answers[i].response.status)
        }
        tally.report(to: metrics)
        acks += extraAcks
        if !acks.isEmpty {
            pipeline.begin(Words.xack)
            pipeline.add(words.requests)
            pipeline.add(words.group)
            for id in acks { pipeline.add(id) }
        }
        guard pipeline.count > header || owed > 0 else { return }
        if transaction {
            if !publications.isEmpty {
                noteDeferredErrors()
                for error in try link.executeForErrors(publications) {
                    logAnnouncementFailure(error.message)
                    if announcementFailure == nil { announcementFailure = error.message }
                }
                // Not acknowledged: the entries are processed again, and answered from their stored replies.
                if announcementFailure != nil { return }
            }
            pipeline.begin(Words.exec)
            try link.sendDeferred(pipeline)
            noteDeferredErrors()
        } else {
            for error in try link.executeForErrors(pipeline) {
                logAnnouncementFailure(error.message)
                if owedAnnouncements.count < Self.owedLimit {
                    owedAnnouncements.append(RedisCommand(arguments: pipeline.arguments(of: error.index)))
                } else {
                    logger.error("dropped an announcement Redis kept refusing", metadata: ["redis.error": "\(error.message)"])
                }
            }
        }
    }

    /// Whether announcements Redis refused are waiting to be sent again (HTTP).
    var hasOwedAnnouncements: Bool { !owedAnnouncements.isEmpty }

    /// Sends the announcements Redis refused before (HTTP), with nothing new.
    func retryOwedAnnouncements() throws(RedisError) {
        guard !owedAnnouncements.isEmpty else { return }
        try announce(Batch([]), acknowledging: [])
    }

    /// Takes the failure of announcements sent without waiting (stream), read by now: their
    /// entries are still pending and must be processed again.
    func takeAnnouncementFailure() -> String? {
        noteDeferredErrors()
        defer { announcementFailure = nil }
        return announcementFailure
    }

    private func noteDeferredErrors() {
        for message in link.takeDeferredErrors() {
            logAnnouncementFailure(message)
            if announcementFailure == nil { announcementFailure = message }
        }
    }

    private func logAnnouncementFailure(_ message: String) {
        logger.warning("announcing an update failed", metadata: ["redis.error": "\(message)"])
    }

    /// Waits until Redis has answered the announcements sent so far; their failures are then
    /// known to ``takeAnnouncementFailure()``.
    func settle() throws(RedisError) {
        try link.settle()
        noteDeferredErrors()
    }

    /// Forgets every cached task and the scripts (after Redis may have lost its data).
    func forgetCachedTasks() {
        cache.removeAll()
        commitSHA = nil
        rateLimitSHA = nil
    }
}

/// The words of the commands a processor sends, as bytes once: a batch adds them hundreds of times.
private struct Words {
    static let publish = Array("PUBLISH".utf8)
    static let spublish = Array("SPUBLISH".utf8)
    static let xadd = Array("XADD".utf8)
    static let xack = Array("XACK".utf8)
    static let multi = Array("MULTI".utf8)
    static let exec = Array("EXEC".utf8)
    static let maxlen = Array("MAXLEN".utf8)
    static let approximately = Array("~".utf8)
    static let newId = Array("*".utf8)
    static let id = Array("id".utf8)
    static let rev = Array("rev".utf8)
    static let requestId = Array("request-id".utf8)
    static let event = Array("event".utf8)

    let updates: [UInt8]
    let events: [UInt8]
    let requests: [UInt8]
    let group: [UInt8]
    /// Every shard's change feed (empty with one shard): the HTTP path appends to the task's.
    let shardEvents: [[UInt8]]

    init(keys: Keys, shards: Int) {
        updates = Array(keys.updates.utf8)
        events = Array(keys.events.utf8)
        shardEvents = shards > 1 ? (0..<shards).map { Array(keys.forShard($0, of: shards).events.utf8) } : []
        requests = Array(keys.requests.utf8)
        group = Array(keys.group.utf8)
    }
}

/// A batch's requests by path and status, counted before they reach the shared counters.
private struct RequestTally {
    private var counts: [(path: BridgeMetrics.Path, status: Int, count: Int)] = []

    mutating func count(path: BridgeMetrics.Path, status: Int) {
        if let k = counts.firstIndex(where: { $0.path == path && $0.status == status }) {
            counts[k].count += 1
        } else {
            counts.append((path, status, 1))
        }
    }

    func report(to metrics: BridgeMetrics) {
        for (path, status, count) in counts { metrics.countRequest(path: path, status: status, count: count) }
    }
}
