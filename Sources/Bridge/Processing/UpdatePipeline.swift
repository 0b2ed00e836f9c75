//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
public import Logging
import Metrics
public import Redis
public import TaskStatus

/// Decides, commits and announces batches of requests; both the stream consumer and the HTTP API
/// send their requests through it, so that they share one engine and one atomic commit.
///
/// For one batch: read the tasks it needs and does not hold (one round trip), decide every request,
/// commit each task's requests with one script call (one round trip for all tasks), then publish
/// the notifications, change-feed entries and replies and acknowledge the entries (one round trip).
/// A commit that meets a newer `_rev` gets the current hash back and is decided again; a request
/// whose reply is already stored is answered from it, never applied twice.
public actor UpdatePipeline {
    private let redis: RedisClient
    private let configuration: BridgeConfiguration
    private let keys: Keys
    private let evaluator: UpdateEvaluator
    private let logger: Logger
    private let metrics: BridgeMetrics
    private var cache: TaskCache
    private var commitSHA: String?
    private let replyTTL: String
    private let eventsMaxLength: String

    /// Rounds of deciding again after revision conflicts before a request is answered 500.
    static let maxRounds = 10

    public init(redis: RedisClient, configuration: BridgeConfiguration, logger: Logger, metrics: BridgeMetrics) {
        self.redis = redis
        self.metrics = metrics
        self.configuration = configuration
        self.keys = configuration.keys
        self.evaluator = UpdateEvaluator(writableProperties: configuration.writableProperties)
        self.logger = logger
        self.cache = TaskCache(capacity: configuration.cacheSize)
        self.replyTTL = String(max(1, configuration.replyTTL.components.seconds))
        self.eventsMaxLength = String(configuration.eventsMaxLength)
    }

    /// What a task looks like to this batch.
    private enum TaskState {
        case record(TaskRecord)
        case absent
        case corrupt(rev: String, reason: String)

        var expectedRev: String {
            switch self {
            case .record(let record): return String(record.rev)
            case .absent: return ""
            case .corrupt(let rev, _): return rev
            }
        }
    }

    /// The answer to one request and where it came from.
    private struct Answer {
        var response: TaskResponse
        /// The reply as stored and published.
        var replyJSON: [UInt8]
        /// Whether it was found stored from an earlier delivery.
        var fromStore: Bool
        /// For a successful update: the TaskStatus JSON after it.
        var task: [UInt8]?
    }

    /// Processes requests in order (per task) and returns their answers in the same order; then
    /// acknowledges `entryIds` in the same round trip as the replies.
    public func process(_ requests: [PatchRequest], acknowledging entryIds: [String] = []) async throws(RedisError) -> [TaskResponse] {
        var answers = [Answer?](repeating: nil, count: requests.count)
        var early: [Int] = []
        var groups: [(taskId: String, indices: [Int])] = []
        var groupOf: [String: Int] = [:]
        for (i, request) in requests.enumerated() {
            if request.rejection != nil || !PatchRequest.isValidTaskId(request.taskId) {
                early.append(i)
            } else if let g = groupOf[request.taskId] {
                groups[g].indices.append(i)
            } else {
                groupOf[request.taskId] = groups.count
                groups.append((request.taskId, [i]))
            }
        }
        var states: [String: TaskState] = [:]
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
            try await load(groups.map(\.taskId).filter { states[$0] == nil }, into: &states)
            let now = RFC3339.now()
            var commands: [RedisCommand] = []
            var decided: [[(Evaluation, [UInt8])]] = []
            var finals: [TaskRecord?] = []
            for i in early {
                let request = requests[i]
                let response = overrides[i] ?? request.rejection ?? .error(400, "the task id must be 1 to 256 bytes without control characters")
                let reply = response.replyJSON(requestId: request.requestId, taskId: request.taskId)
                answers[i] = Answer(response: response, replyJSON: reply, fromStore: false, task: nil)
                commands.append(
                    RedisCommand("SET", keys.reply(taskId: request.taskId, requestId: request.requestId), reply, "NX", "GET", "EX", replyTTL)
                )
            }
            let sha = try await commitScript()
            for group in groups {
                let state = states[group.taskId] ?? .absent
                var record: TaskRecord?
                if case .record(let r) = state { record = r }
                var evaluations: [(Evaluation, [UInt8])] = []
                var changed: [TaskProperty: Bool] = [:]
                for i in group.indices {
                    let request = requests[i]
                    let evaluation: Evaluation
                    if case .corrupt(_, let reason) = state {
                        evaluation = .failed(.error(500, "the stored task \(request.taskId) cannot be read: \(reason)"))
                    } else {
                        evaluation = evaluator.evaluate(request, on: record, now: now)
                    }
                    if case .updated(let updated, let changes, _) = evaluation {
                        record = updated
                        for change in changes { changed[change.property] = true }
                    }
                    evaluations.append((evaluation, evaluation.response.replyJSON(requestId: request.requestId, taskId: request.taskId)))
                }
                var command = RedisCommand("EVALSHA", sha, group.indices.count + 1, keys.task(group.taskId))
                for i in group.indices { command.append(keys.reply(taskId: group.taskId, requestId: requests[i].requestId)) }
                command.append(state.expectedRev)
                command.append(replyTTL)
                var sets: [[UInt8]] = []
                var deletions: [[UInt8]] = []
                if let record, case .record(let old) = state, record.rev != old.rev {
                    sets.append(Array(TaskProperty.revisionField.utf8))
                    sets.append(Array(String(record.rev).utf8))
                    for property in TaskProperty.allCases where changed[property] == true {
                        if let value = record.fields[property.index] {
                            sets.append(Array(property.rawValue.utf8))
                            sets.append(value)
                        } else {
                            deletions.append(Array(property.rawValue.utf8))
                        }
                    }
                }
                command.append(sets.count / 2)
                for value in sets { command.append(value) }
                command.append(deletions.count)
                for value in deletions { command.append(value) }
                for evaluation in evaluations { command.append(evaluation.1) }
                commands.append(command)
                decided.append(evaluations)
                finals.append(record)
            }
            let replies = try await redis.execute(commands)
            let earlyCount = early.count

            // Requests decided without their task: a stored reply wins over the one just made.
            for (k, i) in early.enumerated() {
                switch replies[k] {
                case .bulk(let stored):
                    answers[i] = Self.storedAnswer(stored) ?? answers[i]
                case .error(let message):
                    logger.error("storing a reply failed", metadata: ["redis.error": "\(message)", "request.id": "\(requests[i].requestId)"])
                default:
                    break
                }
            }
            early = []
            var remaining: [(taskId: String, indices: [Int])] = []
            for (g, group) in groups.enumerated() {
                let reply = replies[earlyCount + g]
                switch reply {
                case .array(let parts) where parts.first == .integer(1):
                    for (k, i) in group.indices.enumerated() {
                        let (evaluation, json) = decided[g][k]
                        var task: [UInt8]?
                        if case .updated(_, _, let response) = evaluation { task = response.body }
                        answers[i] = Answer(response: evaluation.response, replyJSON: json, fromStore: false, task: task)
                    }
                    if let record = finals[g] { cache.store(record, for: group.taskId) }
                    states[group.taskId] = finals[g].map { .record($0) } ?? states[group.taskId]
                case .array(let parts) where parts.first == .integer(2):
                    var answered = Set<Int>()
                    var k = 1
                    while k + 1 < parts.count {
                        if let position = parts[k].int, let stored = parts[k + 1].bytes, position >= 1, position <= group.indices.count {
                            let i = group.indices[Int(position) - 1]
                            answers[i] = Self.storedAnswer(stored)
                            answered.insert(i)
                        }
                        k += 2
                    }
                    metrics.redeliveries.increment(by: answered.count)
                    cache.remove(group.taskId)
                    states[group.taskId] = nil
                    let rest = group.indices.filter { !answered.contains($0) }
                    if !rest.isEmpty { remaining.append((group.taskId, rest)) }
                case .array(let parts) where parts.first == .integer(3):
                    metrics.conflicts.increment()
                    states[group.taskId] = decode(hash: .array(Array(parts.dropFirst())), taskId: group.taskId)
                    remaining.append(group)
                case .error(let message) where message.hasPrefix("NOSCRIPT"):
                    commitSHA = nil
                    remaining.append(group)
                default:
                    logger.error(
                        "committing an update failed",
                        metadata: ["redis.key": "\(keys.task(group.taskId))", "redis.reply": "\(reply)"]
                    )
                    for i in group.indices {
                        overrides[i] = .error(500, "the update could not be committed: \(reply)")
                        early.append(i)
                    }
                }
            }
            groups = remaining
        }
        let finished = answers.map { $0! }
        try await announce(requests, finished, acknowledging: entryIds)
        return finished.map(\.response)
    }

    /// Publishes notifications, change-feed entries and replies, then acknowledges, in one round trip.
    private func announce(_ requests: [PatchRequest], _ answers: [Answer], acknowledging entryIds: [String]) async throws(RedisError) {
        var commands: [RedisCommand] = []
        for (request, answer) in zip(requests, answers) {
            guard answer.response.status == 200, let task = answer.task, let rev = answer.response.rev else { continue }
            let notification = UpdateNotification.json(
                taskId: request.taskId,
                rev: rev,
                requestId: request.requestId,
                patch: request.patchJSON,
                task: task
            )
            commands.append(RedisCommand("PUBLISH", keys.updates, notification))
            commands.append(RedisCommand("PUBLISH", keys.updates(request.taskId), notification))
            commands.append(
                RedisCommand(
                    "XADD",
                    keys.events,
                    "MAXLEN",
                    "~",
                    eventsMaxLength,
                    "*",
                    "id",
                    request.taskId,
                    "rev",
                    rev,
                    "request-id",
                    request.requestId,
                    "event",
                    notification
                )
            )
        }
        for (request, answer) in zip(requests, answers) {
            metrics.countRequest(path: request.entryId == nil ? .http : .stream, status: answer.response.status)
            if let replyTo = request.replyTo { commands.append(RedisCommand("PUBLISH", replyTo, answer.replyJSON)) }
        }
        if !entryIds.isEmpty {
            commands.append(RedisCommand("XACK", arguments: [keys.requests, keys.group] + entryIds))
        }
        guard !commands.isEmpty else { return }
        for reply in try await redis.execute(commands) {
            if case .error(let message) = reply {
                logger.warning("announcing an update failed", metadata: ["redis.error": "\(message)"])
            }
        }
    }

    /// Reads the tasks not held in the cache, in one round trip.
    private func load(_ taskIds: [String], into states: inout [String: TaskState]) async throws(RedisError) {
        var missing: [String] = []
        for id in taskIds {
            if let record = cache[id] {
                states[id] = .record(record)
            } else {
                missing.append(id)
            }
        }
        guard !missing.isEmpty else { return }
        let replies = try await redis.execute(missing.map { RedisCommand("HGETALL", keys.task($0)) })
        for (id, reply) in zip(missing, replies) {
            states[id] = decode(hash: reply, taskId: id)
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

    private static func storedAnswer(_ stored: [UInt8]) -> Answer? {
        guard let response = TaskResponse(replyJSON: stored) else { return nil }
        return Answer(response: response, replyJSON: stored, fromStore: true, task: response.status == 200 ? response.body : nil)
    }

    /// The SHA of the commit script, loading it when Redis does not have it.
    private func commitScript() async throws(RedisError) -> String {
        if let commitSHA { return commitSHA }
        guard let sha = try await redis.execute(RedisCommand("SCRIPT", "LOAD", Scripts.commit)).string else {
            throw RedisError(code: .unexpectedReply, message: "SCRIPT LOAD did not answer a SHA")
        }
        commitSHA = sha
        return sha
    }

    /// Forgets every cached task (after Redis may have lost its data).
    public func forgetCachedTasks() {
        cache.removeAll()
        commitSHA = nil
    }
}
