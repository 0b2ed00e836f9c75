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
        var (command, record) = try putCommand(document)
        guard let rev = try await redis.execute(command).int else { throw Failure(description: "the put script did not answer a revision") }
        record.rev = rev
        return record
    }

    /// Stores many tasks, a few hundred per round trip; answers their revisions in order.
    public func put(_ documents: [JSONValue]) async throws -> [Int64] {
        var revisions: [Int64] = []
        revisions.reserveCapacity(documents.count)
        for start in stride(from: 0, to: documents.count, by: 500) {
            let commands = try documents[start..<min(start + 500, documents.count)].map { try putCommand($0).command }
            for reply in try await redis.execute(commands) {
                guard let rev = try reply.get().int else { throw Failure(description: "the put script did not answer a revision") }
                revisions.append(rev)
            }
        }
        return revisions
    }

    /// Deletes keys (tasks, stored replies), a thousand per round trip; one key per command, so
    /// that no command spans hash slots.
    public func delete(keys: [String]) async throws {
        for start in stride(from: 0, to: keys.count, by: 1000) {
            _ = try await redis.execute(keys[start..<min(start + 1000, keys.count)].map { RedisCommand("UNLINK", $0) })
        }
    }

    private func putCommand(_ document: JSONValue) throws -> (command: RedisCommand, record: TaskRecord) {
        let canonical: JSONValue
        do {
            canonical = try TaskStatusSchema.validate(document)
        } catch {
            throw Failure(description: error.description)
        }
        guard let id = canonical["id"]?.stringValue, PatchRequest.isValidTaskId(id) else {
            throw Failure(description: PatchRequest.taskIdRule)
        }
        let record = TaskRecord(rev: 0, document: canonical)
        var command = RedisCommand("EVAL", Scripts.put, 1, keys.task(id))
        let fields = TaskProperty.allCases.map { ($0, record.field($0)) }
        command.append(fields.filter { $0.1 != nil }.count)
        for case (let property, let value?) in fields {
            command.append(property.rawValue)
            command.append(value)
        }
        for (property, value) in fields where value == nil { command.append(property.rawValue) }
        return (command, record)
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
