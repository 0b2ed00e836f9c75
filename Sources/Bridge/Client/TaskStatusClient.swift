//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import JSONPatch
public import Redis
public import TaskStatus

/// What people and scripts do to tasks from outside the bridge: store a task, read one, send an
/// update request and wait for its reply. The same calls the contract gives any producer.
public struct TaskStatusClient: Sendable {
    public let configuration: RedisConfiguration
    public let keys: Keys
    /// The bridges' `--shards`: which stream a task's requests go to.
    public let shards: Int
    let redis: RedisClient

    public init(configuration: RedisConfiguration, prefix: String, shards: Int = 1, pubsub: PubSubMode = .classic) {
        self.configuration = configuration
        self.keys = Keys(prefix: prefix, shardedPubSub: pubsub == .sharded)
        self.shards = max(1, shards)
        self.redis = RedisClient(configuration: configuration, name: "redis-client")
    }

    /// The request stream of a task's shard (contract section 7).
    public func requestStream(forTask id: String) -> String {
        keys.forTask(id, of: shards).requests
    }

    /// A failure the caller can act on.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Stores a whole TaskStatus, validated; its `_rev` becomes 1, or one more than before.
    public func put(_ document: JSONValue) async throws -> TaskRecord {
        let (records, revisions) = try await store([document])
        var record = records[0]
        record.rev = revisions[0]
        return record
    }

    /// Stores many tasks, a few hundred per round trip; answers their revisions in order.
    public func put(_ documents: [JSONValue]) async throws -> [Int64] {
        var revisions: [Int64] = []
        revisions.reserveCapacity(documents.count)
        for start in stride(from: 0, to: documents.count, by: 500) {
            revisions += try await store(Array(documents[start..<min(start + 500, documents.count)])).revisions
        }
        return revisions
    }

    /// Stores tasks the way the bridge creates them (contract section 9): validated as a creation
    /// is, written by the commit script (which checks the revision it replaces, moves the task in
    /// the list index and publishes the notifications), then announced in the change feed. A task
    /// that exists is replaced whole, at one more revision.
    private func store(_ documents: [JSONValue]) async throws -> (records: [TaskRecord], revisions: [Int64]) {
        let decoder = PatchRequestDecoder(
            limits: RequestLimits(maxPatchBytes: Int.max, maxOperations: 0, maxDepth: 4096),
            requireExperimentalFlag: false
        )
        var requests: [PatchRequest] = []
        for document in documents {
            let request = decoder.decode(
                taskId: nil,
                requestId: nil,
                entryId: nil,
                replyTo: nil,
                authorization: nil,
                experimental: nil,
                contentType: nil,
                ifMatch: nil,
                patch: nil,
                create: document.serialized()
            )
            if let rejection = request.rejection {
                throw Failure(description: String(decoding: rejection.body, as: UTF8.self))
            }
            requests.append(request)
        }
        let context = CommitScript.Context(
            keys: keys,
            replyTTL: "1",
            updatesChannel: keys.shardedPubSub ? [] : Array(keys.updates.utf8),
            indexesInScript: configuration.cluster == nil,
            shards: shards
        )
        guard let sha = try await redis.execute(RedisCommand("SCRIPT", "LOAD", CommitScript.text)).string else {
            throw Failure(description: "SCRIPT LOAD did not answer a SHA")
        }
        var revisions = [Int64](repeating: 0, count: requests.count)
        var open = Array(requests.indices)
        for _ in 0..<10 where !open.isEmpty {
            var read = RedisPipeline()
            for i in open {
                read.begin("HGET")
                read.add(keys.task(requests[i].taskId))
                read.add(TaskProperty.revisionField)
            }
            let current = try await redis.execute(read)
            var pipeline = RedisPipeline()
            var answerAt: [Int] = []
            var calls: [CommitScript.Call] = []
            for (k, i) in open.enumerated() {
                if let message = current[k].errorMessage { throw Failure(description: "reading \(keys.task(requests[i].taskId)) failed: \(message)") }
                let before = current[k].string
                guard var record = requests[i].creation else { continue }
                record.rev = (before.flatMap { Int64($0) } ?? 0) + 1
                let note = UpdateNotification.json(
                    taskId: requests[i].taskId,
                    rev: record.rev,
                    requestId: requests[i].requestId,
                    patch: requests[i].patchJSON,
                    summary: record.summaryJSON,
                    task: record.json.count <= BridgeConfiguration.Defaults.wholeTaskMaxBytes ? record.json : nil
                )
                let call = CommitScript.Call(
                    taskId: requests[i].taskId,
                    expectedRev: before ?? "",
                    update: (record, TaskPropertySet(TaskProperty.allCases)),
                    index: TaskIndexEntry(record),
                    requests: [
                        CommitScript.Call.Request(requestId: requests[i].requestId, reply: .whole([]), storedReply: nil, notification: .whole(note))
                    ]
                )
                answerAt.append(pipeline.count + CommitScript.add(call, sha: sha, context: context, to: &pipeline) - 1)
                calls.append(call)
                revisions[i] = record.rev
            }
            let replies = try await redis.execute(pipeline)
            var announce = RedisPipeline()
            var moved: [Int] = []
            for (k, i) in open.enumerated() {
                switch CommitScript.decode(replies[answerAt[k]], requestCount: 1) {
                case .committed:
                    guard let record = calls[k].update?.record else { continue }
                    let shard = keys.forTask(requests[i].taskId, of: shards)
                    announce.begin("XADD")
                    for word in [
                        shard.events, "MAXLEN", "~", String(BridgeConfiguration.Defaults.eventsMaxLength), "*", "id", requests[i].taskId, "rev",
                        String(record.rev), "request-id", requests[i].requestId, "event",
                    ] {
                        announce.add(word)
                    }
                    CommitScript.Payload.add(calls[k].requests[0].notification, orEmptyTo: &announce)
                    if !context.indexesInScript, let entry = calls[k].index {
                        for command in entry.placing(requests[i].taskId, in: shard) { announce.append(command) }
                    }
                case .revisionMoved, .answeredBefore, .stageMissing:
                    moved.append(i)
                case .failed(let message):
                    throw Failure(description: "storing \(keys.task(requests[i].taskId)) failed: \(message)")
                }
            }
            if !announce.isEmpty {
                for (_, message) in try await redis.executeForErrors(announce) {
                    throw Failure(description: "announcing a stored task failed: \(message)")
                }
            }
            open = moved
        }
        guard open.isEmpty else { throw Failure(description: "the tasks kept changing while they were stored: \(open.map { requests[$0].taskId })") }
        return (requests.compactMap(\.creation), revisions)
    }

    /// Deletes keys (tasks, stored replies), a thousand per round trip; one key per command, so
    /// that no command spans hash slots.
    public func delete(keys: [String]) async throws {
        for start in stride(from: 0, to: keys.count, by: 1000) {
            _ = try await redis.execute(keys[start..<min(start + 1000, keys.count)].map { RedisCommand("UNLINK", $0) })
        }
    }

    /// Reads a task; `nil` when there is none.
    public func get(_ id: String) async throws -> TaskRecord? {
        let reply = try await redis.execute(RedisCommand("HGETALL", keys.task(id)))
        guard let pairs = reply.pairs else { throw Failure(description: "HGETALL answered \(reply)") }
        do {
            return try TaskRecord(hash: pairs)
        } catch {
            throw Failure(description: "the stored task \(keys.task(id)) is corrupt: \(error)")
        }
    }

    /// The parts of one update request, as a producer writes them.
    public struct Request: Sendable {
        public var taskId: String
        public var patch: [UInt8]
        public var requestId: String
        public var ifMatch: String?
        public var authorization: String?
        public var experimental: Bool

        public init(
            taskId: String,
            patch: [UInt8],
            requestId: String = ErrorEnvelope.trackingId(),
            ifMatch: String? = nil,
            authorization: String? = nil,
            experimental: Bool = true
        ) {
            self.taskId = taskId
            self.patch = patch
            self.requestId = requestId
            self.ifMatch = ifMatch
            self.authorization = authorization
            self.experimental = experimental
        }
    }

    /// Queues a request with `XADD` and waits for its reply on a private channel (falling back to
    /// the stored reply), up to `timeout`. Returns the reply JSON.
    public func send(_ request: Request, timeout: Duration) async throws -> [UInt8] {
        var subscriberConfiguration = configuration
        subscriberConfiguration.commandTimeout = timeout
        let subscriber = RedisClient(configuration: subscriberConfiguration, name: "redis-subscriber")
        let channel = "\(keys.prefix):replies:\(request.requestId)"
        try await subscriber.subscribe([channel], sharded: keys.shardedPubSub)
        var fields: [any RedisArgument] = [
            requestStream(forTask: request.taskId), "*", "id", request.taskId, "patch", request.patch, "reply-to", channel, "request-id",
            request.requestId,
        ]
        if request.experimental { fields += ["x-sailpoint-experimental", "true"] }
        if let ifMatch = request.ifMatch { fields += ["if-match", ifMatch] }
        if let authorization = request.authorization { fields += ["authorization", authorization] }
        // Queued again, under the same request id, while Redis cannot take it (a failover):
        // a request id is applied once however often it is queued.
        let deadline = ContinuousClock.now + timeout
        while true {
            do {
                try await redis.execute(RedisCommand("XADD", arguments: fields))
                break
            } catch {
                guard error.isTransient, ContinuousClock.now + .milliseconds(200) < deadline else { throw error }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        do {
            return try await subscriber.nextMessage().payload
        } catch {
            guard error.code == .timedOut else { throw error }
        }
        // The reply may have come before the subscription took effect: it is stored too.
        let key = keys.reply(taskId: request.taskId, requestId: request.requestId)
        if let stored = try await redis.execute(RedisCommand("GET", key)).bytes { return stored }
        throw Failure(
            description: "no reply within \(timeout); is a bridge running on \(configuration)? The request stays queued as \(request.requestId)"
        )
    }
}
