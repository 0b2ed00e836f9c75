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
/// For one batch: read the tasks it needs and does not hold (one round trip, usually none), decide
/// every request, commit each task's requests with one script call (one round trip for all tasks),
/// then publish the notifications, append the change-feed entries, publish the replies and
/// acknowledge the entries (one round trip; on the stream path sent without waiting for Redis's
/// answers, which are read with the next batch's). A commit that meets a newer `_rev` gets the current
/// hash back and is decided again; a request whose reply is already stored is answered from it,
/// never applied twice, and its announcements are made again.
///
/// Not thread-safe: it belongs to one actor and runs on that actor's thread.
final class UpdateProcessor {
    let link: RedisLink
    private let keys: Keys
    private let evaluator: UpdateEvaluator
    private let logger: Logger
    private let metrics: BridgeMetrics
    private var cache: TaskCache
    private var commitSHA: String?
    private var rateLimitSHA: String?
    private let rateLimiter: RateLimiter?
    private let replyTTL: String
    private let words: Words
    /// Whether `process` returns once the announcements are sent, before Redis has answered them
    /// (their errors are logged later): for the stream, where no caller waits on them.
    private let defersAnnouncements: Bool
    /// The round trips' buffers, kept from batch to batch.
    private var commitPipeline = RedisPipeline()
    private var announcePipeline = RedisPipeline()

    /// Rounds of deciding again after revision conflicts before a request is answered 500.
    static let maxRounds = 50

    init(link: RedisLink, configuration: BridgeConfiguration, logger: Logger, metrics: BridgeMetrics, defersAnnouncements: Bool = false) {
        self.link = link
        self.defersAnnouncements = defersAnnouncements
        self.metrics = metrics
        self.keys = configuration.keys
        self.evaluator = UpdateEvaluator(writableProperties: configuration.writableProperties)
        self.logger = logger
        self.cache = TaskCache(capacity: configuration.cacheSize)
        self.rateLimiter =
            configuration.rateLimit.enabled
            ? RateLimiter(configuration: configuration.rateLimit, keyPrefix: "\(configuration.prefix):ratelimit:{") : nil
        self.replyTTL = String(max(1, configuration.replyTTL.components.seconds))
        self.words = Words(keys: configuration.keys, eventsMaxLength: configuration.eventsMaxLength)
    }

    /// What a task looks like to this batch.
    private enum TaskState {
        case unknown
        case record(TaskRecord)
        case absent
        case corrupt(rev: String, reason: String)
    }

    /// One task's requests in this batch, in order, and what the batch knows of the task.
    private struct Group {
        let taskId: String
        var indices: [Int]
        var state: TaskState = .unknown
    }

    /// The answer to one request.
    private struct Answer {
        var response: TaskResponse
        /// The reply as stored and published.
        var reply: ReplyText
        /// For a successful update (fresh or found stored), its notification's head: the
        /// notification is this, the task (the response's body), and `}`.
        var notificationHead: [UInt8]? = nil
        /// Whether the commit script published the notification already.
        var notified = false

        /// Adds the reply as one argument.
        func addReply(to pipeline: inout RedisPipeline) {
            switch reply {
            case .parts(let head): pipeline.addBytes(joining: head, response.body, Self.closingBrace)
            case .whole(let bytes): pipeline.add(bytes)
            }
        }

        /// Adds the notification as one argument; an empty one when the request changed nothing.
        func addNotification(to pipeline: inout RedisPipeline) {
            guard let notificationHead else {
                pipeline.add("")
                return
            }
            pipeline.addBytes(joining: notificationHead, response.body, Self.closingBrace)
        }

        static let closingBrace: [UInt8] = [UInt8(ascii: "}")]

        /// What a request holds until it is answered (status 0 never leaves the processor).
        static let unanswered = Answer(response: TaskResponse(status: 0, body: []), reply: .whole([]))
    }

    /// A reply's text: its head before the response's body and `}` (a fresh answer), or whole
    /// (a reply found stored).
    private enum ReplyText {
        case parts(head: [UInt8])
        case whole([UInt8])
    }

    /// Processes requests in order (per task) and returns their answers in the same order; then
    /// acknowledges `entryIds` in the same round trip as the replies.
    func process(_ requests: [PatchRequest], acknowledging entryIds: [String] = []) throws(RedisError) -> [TaskResponse] {
        var requests = requests
        try limitRates(&requests)
        // Every request is answered before the end (checked there); answers move into place.
        var answers = [Answer](repeating: .unanswered, count: requests.count)
        var early: [Int] = []
        var groups: [Group] = []
        var groupOf: [String: Int] = [:]
        // By index rather than by element: a request is large, and copying one costs a retain per field.
        for i in requests.indices {
            let taskId = requests[i].taskId
            if requests[i].rejection != nil || !PatchRequest.isValidTaskId(taskId) {
                early.append(i)
            } else if let g = groupOf[taskId] {
                groups[g].indices.append(i)
            } else {
                groupOf[taskId] = groups.count
                groups.append(Group(taskId: taskId, indices: [i]))
            }
        }
        var overrides: [Int: TaskResponse] = [:]
        var round = 0
        while !groups.isEmpty || !early.isEmpty {
            round += 1
            if round > Self.maxRounds {
                for group in groups {
                    for i in group.indices {
                        overrides[i] = .error(500, "the update could not be committed after \(Self.maxRounds) attempts (concurrent writers)")
                        early.append(i)
                    }
                }
                groups = []
            }
            try load(&groups)
            let now = RFC3339.now()
            var pipeline = commitPipeline
            commitPipeline = RedisPipeline()
            pipeline.removeAll()
            // Requests decided without their task: stored unless a reply is stored already.
            var stored: [Int] = []
            for i in early {
                let request = requests[i]
                let response = overrides[i] ?? request.rejection ?? .error(400, "the task id must be 1 to 256 bytes without control characters")
                let reply = response.replyJSON(requestId: request.requestId, taskId: request.taskId)
                answers[i] = Answer(response: response, reply: .whole(reply))
                guard request.storesReply else { continue }
                stored.append(i)
                pipeline.begin("SET")
                pipeline.add(joining: keys.replyPrefix, request.taskId, "}:", request.requestId)
                pipeline.add(reply)
                pipeline.add("NX")
                pipeline.add("GET")
                pipeline.add("EX")
                pipeline.add(replyTTL)
            }
            let sha = groups.isEmpty ? "" : try commitScript()
            var decided: [(answers: [Answer], record: TaskRecord?)] = []
            decided.reserveCapacity(groups.count)
            for group in groups {
                decided.append(decide(group, requests, sha: sha, now: now, into: &pipeline))
            }
            let replies = pipeline.isEmpty ? nil : try link.execute(pipeline)
            commitPipeline = pipeline
            let earlyCount = stored.count
            for (k, i) in stored.enumerated() {
                guard let reply = replies?[k] else { continue }
                if let stored = reply.bytes, reply.kind == .bulk {
                    answers[i] = Self.storedAnswer(Array(stored), for: requests[i]) ?? answers[i]
                } else if let message = reply.errorMessage {
                    logger.error("storing a reply failed", metadata: ["redis.error": "\(message)", "request.id": "\(requests[i].requestId)"])
                }
            }
            early = []
            var remaining: [Group] = []
            for (g, var group) in groups.enumerated() {
                guard let reply = replies?[earlyCount + g] else { continue }
                let parts = reply.elements
                let outcome = parts.isEmpty ? nil : parts[0].int
                switch outcome {
                case 1 where reply.kind == .array:
                    for (k, i) in group.indices.enumerated() { swap(&answers[i], &decided[g].answers[k]) }
                    if let record = decided[g].record { cache.store(record, for: group.taskId) }
                case 2 where reply.kind == .array:
                    var answered: [Int] = []
                    var iterator = parts.makeIterator()
                    _ = iterator.next()
                    while let position = iterator.next()?.int, let stored = iterator.next()?.bytes {
                        if position >= 1, position <= group.indices.count {
                            let i = group.indices[Int(position) - 1]
                            // A stored reply that does not read back is published again as it is.
                            answers[i] =
                                Self.storedAnswer(Array(stored), for: requests[i])
                                ?? Answer(response: .error(500, "the stored reply cannot be read"), reply: .whole(Array(stored)))
                            answered.append(i)
                        }
                    }
                    metrics.redeliveries.increment(by: answered.count)
                    cache.remove(group.taskId)
                    group.indices.removeAll { answered.contains($0) }
                    group.state = .unknown
                    if !group.indices.isEmpty { remaining.append(group) }
                case 3 where reply.kind == .array:
                    metrics.conflicts.increment()
                    group.state = decode(hash: .array(parts.dropFirst().map(\.reply)), taskId: group.taskId)
                    remaining.append(group)
                default:
                    if let message = reply.errorMessage, message.hasPrefix("NOSCRIPT") {
                        commitSHA = nil
                        remaining.append(group)
                        continue
                    }
                    logger.error("committing an update failed", metadata: ["task.id": "\(group.taskId)", "redis.reply": "\(reply.reply)"])
                    for i in group.indices {
                        overrides[i] = .error(500, "the update could not be committed: \(reply.reply)")
                        early.append(i)
                    }
                }
            }
            groups = remaining
            // Writers that keep colliding on a task take turns: a short random pause, growing
            // with the rounds, lets the others through. This blocks only this processor's thread.
            if !groups.isEmpty, round >= 2 {
                usleep(UInt32.random(in: 0...UInt32(min(round, 20) * 500)))
            }
        }
        precondition(answers.allSatisfy { $0.response.status != 0 }, "a request was left unanswered")
        try announce(requests, answers, acknowledging: entryIds)
        return answers.map(\.response)
    }

    /// Decides one task's requests in order against the task as this batch knows it, and adds
    /// the script call that commits them to `pipeline`. Returns the answers and the task after
    /// them (`nil` when none succeeded).
    private func decide(
        _ group: Group,
        _ requests: [PatchRequest],
        sha: String,
        now: String,
        into pipeline: inout RedisPipeline
    ) -> (answers: [Answer], record: TaskRecord?) {
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
        var answers: [Answer] = []
        answers.reserveCapacity(group.indices.count)
        var changed = TaskPropertySet()
        for i in group.indices {
            let evaluation: Evaluation
            if let corruption {
                evaluation = .failed(.error(500, "the stored task \(group.taskId) cannot be read: \(corruption)"))
            } else {
                evaluation = evaluator.evaluate(requests[i], on: record, now: now)
            }
            var notificationHead: [UInt8]?
            if case .updated(let updated, let fields, _) = evaluation {
                record = updated
                changed.formUnion(fields)
                notificationHead = UpdateNotification.head(
                    taskId: group.taskId,
                    rev: updated.rev,
                    requestId: requests[i].requestId,
                    patch: requests[i].patchJSON
                )
            }
            let response = evaluation.response
            // The script publishes the notification when it commits, and only then are these answers used.
            answers.append(
                Answer(
                    response: response,
                    reply: .parts(head: response.replyHead(requestId: requests[i].requestId, taskId: group.taskId)),
                    notificationHead: notificationHead,
                    notified: notificationHead != nil
                )
            )
        }
        pipeline.begin(Words.evalsha)
        pipeline.add(sha)
        pipeline.add(group.indices.count + 1)
        pipeline.add(joining: keys.taskPrefix, group.taskId, "}")
        for i in group.indices { pipeline.add(joining: keys.replyPrefix, group.taskId, "}:", requests[i].requestId) }
        pipeline.add(expectedRev)
        pipeline.add(replyTTL)
        pipeline.add(words.updates)
        pipeline.add(joining: keys.updatesPrefix, group.taskId)
        var deletions = TaskPropertySet()
        if let record, let startRev, record.rev != startRev {
            var sets = 1
            for property in changed where record.withField(property, { $0 != nil }) { sets += 1 }
            pipeline.add(sets)
            pipeline.add(TaskProperty.revisionField)
            pipeline.add(record.rev)
            for property in changed {
                record.withField(property) { field in
                    if let field {
                        pipeline.add(property.rawValue)
                        pipeline.addBytes(field)
                    } else {
                        deletions.insert(property)
                    }
                }
            }
        } else {
            pipeline.add(0)
        }
        pipeline.add(deletions.count)
        for property in deletions { pipeline.add(property.rawValue) }
        for (k, answer) in answers.enumerated() {
            if requests[group.indices[k]].storesReply {
                answer.addReply(to: &pipeline)
            } else {
                pipeline.add("")
            }
            answer.addNotification(to: &pipeline)
        }
        let finalRecord = record.flatMap { $0.rev != startRev ? $0 : nil }
        return (answers, finalRecord)
    }

    /// Reads one task as the HTTP API's GET answers it: 200 with the TaskStatus and its ETag,
    /// 404, 500 for a task that does not decode, or 429 over the caller's rate limit.
    func read(taskId: String, rateLimitKey: String?) throws(RedisError) -> TaskResponse {
        var probe = [PatchRequest(taskId: taskId, requestId: "", patch: nil, patchJSON: [], rateLimitKey: rateLimitKey)]
        try limitRates(&probe)
        if let rejection = probe[0].rejection { return rejection }
        guard PatchRequest.isValidTaskId(taskId) else {
            return .error(400, "the task id must be 1 to 256 bytes without control characters")
        }
        let reply = try link.execute([RedisCommand("HGETALL", keys.task(taskId))])[0]
        switch decode(hash: reply, taskId: taskId) {
        case .record(let record):
            return TaskResponse(status: 200, headers: [("ETag", "\"\(record.rev)\"")], body: record.json, rev: record.rev)
        case .absent, .unknown:
            return .error(404, "there is no task with id \(taskId)")
        case .corrupt(_, let reason):
            return .error(500, "the stored task \(taskId) cannot be read: \(reason)")
        }
    }

    /// Answers 429, with `Retry-After`, the requests over their caller's rate limit (one round
    /// trip for the batch, when limits are on).
    private func limitRates(_ requests: inout [PatchRequest]) throws(RedisError) {
        guard let rateLimiter else { return }
        var order: [String] = []
        var members: [String: [Int]] = [:]
        for (i, request) in requests.enumerated() {
            guard request.rejection == nil, let key = request.rateLimitKey else { continue }
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
            rateLimiter.addChecks(for: order.map { ($0, members[$0]!.count) }, sha: rateLimitSHA ?? "", to: &pipeline)
            let replies = try link.execute(pipeline).all
            var unchecked: [String] = []
            for (key, reply) in zip(order, replies) {
                if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
                    rateLimitSHA = nil
                    unchecked.append(key)
                    continue
                }
                let indices = members[key]!
                let decision = RateLimiter.decision(reply, count: indices.count)
                for i in indices.dropFirst(decision.admitted) {
                    requests[i].rejection = .error(429, "", headers: [("Retry-After", String(decision.retryAfter))])
                    metrics.rateLimited.increment()
                }
            }
            order = unchecked
        }
    }

    /// Publishes the notifications, appends the change-feed entries, publishes the replies, then
    /// acknowledges, in one round trip.
    private func announce(_ requests: [PatchRequest], _ answers: [Answer], acknowledging entryIds: [String]) throws(RedisError) {
        var pipeline = announcePipeline
        announcePipeline = RedisPipeline()
        pipeline.removeAll()
        defer { announcePipeline = pipeline }
        let words = self.words
        // By index rather than by element: a request is large, and copying one costs a retain per field.
        for i in requests.indices {
            guard answers[i].notificationHead != nil, let rev = answers[i].response.rev else { continue }
            if !answers[i].notified {
                pipeline.begin(Words.publish)
                pipeline.add(words.updates)
                answers[i].addNotification(to: &pipeline)
                pipeline.begin(Words.publish)
                pipeline.add(joining: keys.updatesPrefix, requests[i].taskId)
                answers[i].addNotification(to: &pipeline)
            }
            pipeline.begin(Words.xadd)
            pipeline.add(words.events)
            pipeline.add(Words.maxlen)
            pipeline.add(Words.approximately)
            pipeline.add(words.eventsMaxLength)
            pipeline.add(Words.newId)
            pipeline.add(Words.id)
            pipeline.add(requests[i].taskId)
            pipeline.add(Words.rev)
            pipeline.add(rev)
            pipeline.add(Words.requestId)
            pipeline.add(requests[i].requestId)
            pipeline.add(Words.event)
            answers[i].addNotification(to: &pipeline)
        }
        let nowMilliseconds = Int64(RFC3339.unixMilliseconds())
        var tally = RequestTally()
        for i in requests.indices {
            tally.count(path: requests[i].entryId == nil ? .http : .stream, status: answers[i].response.status)
            if let entryId = requests[i].entryId, let created = StreamEntry.parse(entryId).map({ Int64(clamping: $0.ms) }),
                created <= nowMilliseconds
            {
                metrics.streamLatency.recordMilliseconds(nowMilliseconds - created)
            }
            if let replyTo = requests[i].replyTo {
                pipeline.begin(Words.publish)
                pipeline.add(replyTo)
                answers[i].addReply(to: &pipeline)
            }
        }
        tally.report(to: metrics)
        if !entryIds.isEmpty {
            pipeline.begin(Words.xack)
            pipeline.add(words.requests)
            pipeline.add(words.group)
            for id in entryIds { pipeline.add(id) }
        }
        guard !pipeline.isEmpty else { return }
        if defersAnnouncements {
            try link.sendDeferred(pipeline)
        } else {
            for error in try link.executeForErrors(pipeline) { logAnnouncementFailure(error.message) }
        }
        for message in link.takeDeferredErrors() { logAnnouncementFailure(message) }
    }

    private func logAnnouncementFailure(_ message: String) {
        logger.warning("announcing an update failed", metadata: ["redis.error": "\(message)"])
    }

    /// Waits until Redis has answered the announcements sent so far, logging their failures.
    func settle() throws(RedisError) {
        try link.settle()
        for message in link.takeDeferredErrors() { logAnnouncementFailure(message) }
    }

    /// Fills in the tasks the batch does not know yet: from the cache, else read in one round trip.
    private func load(_ groups: inout [Group]) throws(RedisError) {
        var missing: [Int] = []
        for g in groups.indices {
            guard case .unknown = groups[g].state else { continue }
            if let record = cache[groups[g].taskId] {
                groups[g].state = .record(record)
            } else {
                missing.append(g)
            }
        }
        guard !missing.isEmpty else { return }
        var pipeline = RedisPipeline()
        for g in missing {
            pipeline.begin("HGETALL")
            pipeline.add(joining: keys.taskPrefix, groups[g].taskId, "}")
        }
        let replies = try link.execute(pipeline).all
        for (g, reply) in zip(missing, replies) {
            groups[g].state = decode(hash: reply, taskId: groups[g].taskId)
        }
    }

    private func decode(hash reply: RedisReply, taskId: String) -> TaskState {
        if case .error(let message) = reply {
            logger.error("a stored task cannot be read", metadata: ["redis.key": "\(keys.task(taskId))", "redis.error": "\(message)"])
            return .corrupt(rev: "", reason: message)
        }
        guard let pairs = reply.pairs else { return .corrupt(rev: "", reason: "unexpected reply \(reply)") }
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

    /// An answer found stored: the reply as it was, and for a success its notification, to be
    /// published again.
    private static func storedAnswer(_ stored: [UInt8], for request: PatchRequest) -> Answer? {
        guard let response = TaskResponse(replyJSON: stored) else { return nil }
        var notificationHead: [UInt8]?
        if response.status == 200, let rev = response.rev {
            notificationHead = UpdateNotification.head(taskId: request.taskId, rev: rev, requestId: request.requestId, patch: request.patchJSON)
        }
        return Answer(response: response, reply: .whole(stored), notificationHead: notificationHead)
    }

    /// The SHA of the commit script, loading it when Redis does not have it.
    private func commitScript() throws(RedisError) -> String {
        if let commitSHA { return commitSHA }
        guard let sha = try link.execute(RedisCommand("SCRIPT", "LOAD", Scripts.commit)).string else {
            throw RedisError(code: .unexpectedReply, message: "SCRIPT LOAD did not answer a SHA")
        }
        commitSHA = sha
        return sha
    }

    /// A processor on a connection of its own.
    convenience init(configuration: BridgeConfiguration, logger: Logger, metrics: BridgeMetrics, defersAnnouncements: Bool) {
        self.init(
            link: RedisLink(configuration: configuration.redis),
            configuration: configuration,
            logger: logger,
            metrics: metrics,
            defersAnnouncements: defersAnnouncements
        )
    }

    /// Forgets every cached task and the script (after Redis may have lost its data).
    func forgetCachedTasks() {
        cache.removeAll()
        commitSHA = nil
    }
}

/// The words of the commands a processor sends, as bytes once: a batch adds them hundreds of times.
private struct Words {
    static let publish = Array("PUBLISH".utf8)
    static let xadd = Array("XADD".utf8)
    static let xack = Array("XACK".utf8)
    static let evalsha = Array("EVALSHA".utf8)
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
    let eventsMaxLength: [UInt8]

    init(keys: Keys, eventsMaxLength: Int) {
        updates = Array(keys.updates.utf8)
        events = Array(keys.events.utf8)
        requests = Array(keys.requests.utf8)
        group = Array(keys.group.utf8)
        self.eventsMaxLength = Array(String(eventsMaxLength).utf8)
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
