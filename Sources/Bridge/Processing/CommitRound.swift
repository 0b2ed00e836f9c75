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

/// One round of a batch: stores the answers decided without a task, decides every task's
/// requests in order and sends each task's commit (``CommitScript``), all in one round trip; then
/// reads what Redis made of each: committed, answered before (a stored reply, with the task as it
/// is now), revision moved (decided again next round on the task Redis handed back), or refused
/// (deferred). Not thread-safe: it belongs to one processor.
struct CommitRound {
    private let keys: Keys
    private let evaluator: UpdateEvaluator
    private let logger: Logger
    private let metrics: BridgeMetrics
    private let context: CommitScript.Context
    /// With `--min-replicas` above 0: how many replicas must confirm each round of commits.
    private let replication: ReplicationCheck?
    /// Notifications carry the whole task up to this size.
    private let wholeTaskLimit: Int
    private var commitSHA: String?
    /// The round trip's buffer, kept from round to round.
    private var commitPipeline = RedisPipeline()
    /// Where calls that announce themselves write (the stream's, on one Redis without replicas
    /// to wait for); `nil`: the announcer announces every commit.
    private let announcement: CommitScript.Announcement?
    /// The change feed's cap for the entries the script writes.
    private var feedBound: FeedBound
    /// The round sent and not read yet (see ``run(_:loader:on:now:mayLeaveInFlight:)``).
    private var inFlight: InFlight?

    private struct InFlight {
        var commands: Int
        var decided: [Decision]
        var answerAt: [Int]
    }

    /// A processor's round; `announcing`: its commits announce themselves where they can (the
    /// stream's).
    init(configuration: BridgeConfiguration, logger: Logger, metrics: BridgeMetrics, announcing: Bool = false) {
        self.keys = configuration.keys
        self.evaluator = UpdateEvaluator(writableProperties: configuration.writableProperties)
        self.logger = logger
        self.metrics = metrics
        self.replication = ReplicationCheck(configuration: configuration)
        self.context = CommitScript.Context(
            keys: configuration.keys,
            replyTTL: String(max(1, configuration.replyTTL.components.seconds)),
            updatesChannel: configuration.pubsub == .sharded ? [] : Array(configuration.keys.updates.utf8),
            publishesNotifications: configuration.minReplicas == 0,
            indexesInScript: configuration.redis.cluster == nil,
            shards: configuration.shards
        )
        self.wholeTaskLimit = configuration.wholeTaskMaxBytes
        let keys = configuration.keys
        self.announcement =
            announcing && configuration.redis.cluster == nil && configuration.minReplicas == 0
            ? CommitScript.Announcement(
                feed: Array(keys.events.utf8),
                maxLength: [],
                requests: Array(keys.requests.utf8),
                group: Array(keys.group.utf8),
                publish: Array((keys.shardedPubSub ? "SPUBLISH" : "PUBLISH").utf8)
            ) : nil
        self.feedBound = FeedBound(maxEntries: configuration.eventsMaxLength, maxBytes: configuration.eventsMaxBytes)
    }

    /// Most requests in a batch whose commits announce themselves (see ``run(_:loader:on:now:mayLeaveInFlight:)``).
    static let announcingBatchLimit = 16

    /// Whether the script publishes the notifications with the commit (not when replicas must
    /// confirm it first: the announcement publishes them).
    var publishesNotifications: Bool { context.publishesNotifications }

    /// Forgets the script (after Redis may have lost it).
    mutating func forgetScript() { commitSHA = nil }

    /// One round: stores the answers decided without a task, decides every group and sends its
    /// commit, in one round trip; then reads what Redis made of each.
    ///
    /// With `mayLeaveInFlight`, in a batch of at most ``announcingBatchLimit`` requests, a round
    /// whose every commit announces itself (the script publishes each reply and acknowledges each
    /// entry: nothing waits on the answer) is only sent, and
    /// `true` returned: ``complete(_:loader:on:)`` reads the answer later, before the link is used
    /// again. The stream's consumer waits for its next entries meanwhile, so that a request costs
    /// it one wake-up instead of two.
    @discardableResult
    mutating func run(
        _ batch: inout Batch,
        loader: inout TaskLoader,
        on link: RedisLink,
        now: String,
        mayLeaveInFlight: Bool = false
    ) throws(RedisError) -> Bool {
        var pipeline = commitPipeline
        commitPipeline = RedisPipeline()
        pipeline.removeAll()
        defer { commitPipeline = pipeline }
        let earlyAnswers = !batch.early.isEmpty
        // Only a small batch's commits announce themselves: for a large one the transaction's
        // commands cost Redis less than the same commands run from Lua, and its one send is
        // shared by many requests (a drain).
        let announcing = mayLeaveInFlight && !earlyAnswers && batch.requests.count <= Self.announcingBatchLimit
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
        let sha = batch.groups.isEmpty ? "" : try commitScript(on: link)
        var decided: [Decision] = []
        decided.reserveCapacity(batch.groups.count)
        // Where each group's `EVALSHA` answers (a large update stages its task first).
        var answerAt: [Int] = []
        answerAt.reserveCapacity(batch.groups.count)
        for group in batch.groups {
            let decision = decide(group, batch.requests, now: now, announcing: announcing)
            answerAt.append(pipeline.count + CommitScript.add(decision.call, sha: sha, context: context, to: &pipeline) - 1)
            decided.append(decision)
        }
        guard !pipeline.isEmpty else { return false }
        if mayLeaveInFlight, !earlyAnswers, replication == nil, decided.allSatisfy({ $0.call.announcement != nil }) {
            try link.send(pipeline)
            inFlight = InFlight(commands: pipeline.count, decided: decided, answerAt: answerAt)
            return true
        }
        let replies: RedisReplies
        var shortfall: Deferral?
        if let replication {
            (replies, shortfall) = try replication.execute(pipeline, on: link, confirming: "the commits")
        } else {
            replies = try link.execute(pipeline)
        }
        // Nothing of the batch becomes visible unless the replicas confirmed this round.
        if let shortfall {
            for group in batch.groups { loader.forget(group.taskId) }
            batch.deferEverything(shortfall)
            return false
        }
        try take(replies, stored: stored, decided: &decided, answerAt: answerAt, batch: &batch, loader: &loader, on: link)
        return false
    }

    /// Reads the answer of the round left in flight and books it in `batch` (the batch it was
    /// sent for); nothing when none is. Should the connection fail first, what the round did is
    /// unknown: its entries stay pending and are processed again (their stored replies answer
    /// what was committed).
    mutating func complete(_ batch: inout Batch, loader: inout TaskLoader, on link: RedisLink) throws(RedisError) {
        guard var flight = inFlight else { return }
        inFlight = nil
        let replies = try link.receive(flight.commands)
        try take(replies, stored: [], decided: &flight.decided, answerAt: flight.answerAt, batch: &batch, loader: &loader, on: link)
    }

    /// Books what Redis made of a round: the early answers stored at `stored`, each group's
    /// commit at `answerAt`.
    private mutating func take(
        _ replies: RedisReplies,
        stored: [Int],
        decided: inout [Decision],
        answerAt: [Int],
        batch: inout Batch,
        loader: inout TaskLoader,
        on link: RedisLink
    ) throws(RedisError) {
        var storedSuccesses: [(index: Int, bytes: [UInt8], reply: StoredReply)] = []
        for (k, i) in stored.enumerated() {
            let reply = replies[k]
            if let bytes = reply.bytes.map(Array.init), reply.kind == .bulk {
                let read = StoredReply(json: bytes)
                if let read, read.keepsNoTask {
                    storedSuccesses.append((i, bytes, read))
                } else {
                    batch.answer(i, Batch.Answer(stored: bytes, reading: read, for: batch.requests[i], current: nil, wholeTaskLimit: wholeTaskLimit))
                }
            } else if let message = reply.errorMessage {
                if RedisError.isTransient(serverError: message) {
                    batch.defer(i, .refused(message))
                } else {
                    logger.error("storing a reply failed", metadata: ["redis.error": "\(message)", "request.id": "\(batch.requests[i].requestId)"])
                }
            }
        }
        let groups = batch.groups
        batch.groups = []
        // Stream entries answered from a stored reply: perhaps answered already (see below).
        var answeredFromStore: [Int] = []
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
                    answer.announced = decided[g].call.announcement != nil
                    batch.answer(i, moving: &answer)
                }
                if let record = decided[g].call.update?.record { loader.keep(record, for: group.taskId) }
                if let index = decided[g].call.index, let last = group.indices.last(where: { batch.answers[$0].notification != nil }) {
                    batch.setIndex(index, of: last)
                }
            case .answeredBefore(let found, let hash):
                // The task as it is now answers the stored successes and decides the rest.
                group.state = loader.decode(pairs: hash.map { ($0.field, $0.value) }, taskId: group.taskId)
                var current: TaskRecord?
                if case .record(let record) = group.state { current = record }
                var answered: [Int] = []
                for entry in found {
                    let i = group.indices[entry.position]
                    batch.answer(i, Batch.Answer(stored: entry.reply, for: batch.requests[i], current: current, wholeTaskLimit: wholeTaskLimit))
                    answered.append(i)
                    if batch.requests[i].entryId != nil { answeredFromStore.append(i) }
                }
                metrics.redeliveries.increment(by: answered.count)
                group.indices.removeAll { answered.contains($0) }
                if !group.indices.isEmpty { batch.groups.append(group) }
            case .revisionMoved(let hash):
                metrics.conflicts.increment()
                group.state = loader.decode(pairs: hash.map { ($0.field, $0.value) }, taskId: group.taskId)
                batch.groups.append(group)
            case .stageMissing:
                Self.defer(group, in: &batch, loader: &loader, Deferral(.stageMissing, "Redis did not keep the staged task (memory full?)"))
            case .failed(let message):
                if message.hasPrefix("NOSCRIPT") {
                    // Redis lost its scripts (SCRIPT FLUSH, a restart): load it again next round.
                    commitSHA = nil
                    batch.groups.append(group)
                } else if RedisError.isTransient(serverError: message) {
                    Self.defer(group, in: &batch, loader: &loader, .refused(message))
                } else {
                    // Not Redis's state for now but this task (a key of another type) or a bug:
                    // answered 500, like a corrupt task, so that one task cannot stall the rest.
                    logger.error("committing an update failed", metadata: ["task.id": "\(group.taskId)", "redis.error": "\(message)"])
                    for i in group.indices { batch.reject(i, with: .error(500, "the update could not be committed: \(message)")) }
                    batch.early += group.indices
                }
            }
        }
        try answerStoredSuccesses(storedSuccesses, in: &batch, loader: &loader, on: link)
        try skipAcknowledged(answeredFromStore, in: &batch, on: link)
    }

    /// Of the stream entries answered from a stored reply, those no longer pending were answered
    /// already: whoever acknowledged an entry published its reply first, or in the same atomic
    /// step (a commit that announced itself, sent on a connection given up as silent and run
    /// once the network let it through, while this bridge read the entry again). Their answers
    /// are not published again; the others are (a redelivery, a producer's repeat). One round
    /// trip, on this rare path only; an error there leaves the answer to be published (at least
    /// once).
    private func skipAcknowledged(_ indices: [Int], in batch: inout Batch, on link: RedisLink) throws(RedisError) {
        guard !indices.isEmpty else { return }
        var pipeline = RedisPipeline()
        for i in indices {
            let id = batch.requests[i].entryId ?? "-"
            pipeline.append(RedisCommand("XPENDING", keys.requests, keys.group, id, id, 1))
        }
        let replies = try link.execute(pipeline)
        for (k, i) in indices.enumerated() where replies[k].kind == .array && replies[k].elements.isEmpty {
            batch.markAnnounced(i)
        }
    }

    /// Answers the requests decided without their task whose earlier copy was answered 200: a
    /// success is stored without its task, which is read now (one round trip; rare).
    private func answerStoredSuccesses(
        _ found: [(index: Int, bytes: [UInt8], reply: StoredReply)],
        in batch: inout Batch,
        loader: inout TaskLoader,
        on link: RedisLink
    ) throws(RedisError) {
        guard !found.isEmpty else { return }
        let tasks = try loader.read(found.map { batch.requests[$0.index].taskId }, on: link)
        for ((i, bytes, reply), task) in zip(found, tasks) {
            switch task {
            case .failure(let deferral):
                batch.defer(i, deferral)
            case .success(let state):
                var current: TaskRecord?
                if case .record(let record) = state { current = record }
                batch.answer(
                    i,
                    Batch.Answer(stored: bytes, reading: reply, for: batch.requests[i], current: current, wholeTaskLimit: wholeTaskLimit)
                )
            }
        }
    }

    private static func `defer`(_ group: Batch.TaskGroup, in batch: inout Batch, loader: inout TaskLoader, _ deferral: Deferral) {
        loader.forget(group.taskId)
        for i in group.indices { batch.defer(i, deferral) }
    }

    /// One group's responses, decided in order, and the commit call that stores them (which
    /// holds each reply and notification: the answers are made of them once committed).
    private struct Decision {
        var responses: [TaskResponse]
        var call: CommitScript.Call
    }

    /// Decides one task's requests in order against the task as the batch knows it.
    private mutating func decide(_ group: Batch.TaskGroup, _ requests: [PatchRequest], now: String, announcing: Bool) -> Decision {
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
                    notification: notification,
                    rev: response.rev,
                    replyTo: requests[i].replyTo,
                    entryId: requests[i].entryId
                )
            )
            responses.append(response)
        }
        if let record, record.rev != startRev {
            call.update = (record, changed)
            if startRev == nil || changed.contains(.completionStatus) { call.index = TaskIndexEntry(record) }
        }
        if announcing { call.announcement = announcement(for: call) }
        return Decision(responses: responses, call: call)
    }

    /// How `call` announces itself: when this round's commits may, and its replies and
    /// notifications are small (``CommitScript/announcementLimit``); else `nil`.
    private mutating func announcement(for call: CommitScript.Call) -> CommitScript.Announcement? {
        guard var announcement else { return nil }
        var bytes = 0
        for request in call.requests {
            bytes += (request.replyTo == nil ? 0 : request.reply.count) + (request.notification?.count ?? 0)
            // Every stream request is acknowledged by the announcement that answers it.
            if request.entryId == nil { return nil }
        }
        guard bytes <= CommitScript.announcementLimit else { return nil }
        for request in call.requests {
            if let notification = request.notification { announcement.maxLength = feedBound.lengthText(adding: notification.count) }
        }
        if announcement.maxLength.isEmpty { announcement.maxLength = Array(String(feedBound.maxEntries).utf8) }
        return announcement
    }

    /// The SHA of the commit script, loading it when Redis does not have it.
    private mutating func commitScript(on link: RedisLink) throws(RedisError) -> String {
        if let commitSHA { return commitSHA }
        let reply = try link.execute(RedisPipeline([RedisCommand("SCRIPT", "LOAD", CommitScript.text)]))[0]
        if let message = reply.errorMessage { throw RedisError(code: .serverError, message: message) }
        guard let sha = reply.string else { throw RedisError(code: .unexpectedReply, message: "SCRIPT LOAD did not answer a SHA") }
        commitSHA = sha
        return sha
    }
}
