//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Logging
import Redis
import TaskStatus

/// Finds the tasks a batch needs: from its cache of tasks (revision-checked by every commit, so
/// a stale copy only costs a round), else read in one round trip; and decodes the hashes Redis
/// hands back. Not thread-safe: it belongs to one processor.
struct TaskLoader {
    private let keys: Keys
    private let logger: Logger
    private var cache: TaskCache

    init(configuration: BridgeConfiguration, logger: Logger) {
        self.keys = configuration.keys
        self.logger = logger
        self.cache = TaskCache(capacity: configuration.cacheSize)
    }

    /// Keeps `record` as the task `id` is now (after a commit).
    mutating func keep(_ record: TaskRecord, for id: String) { cache.store(record, for: id) }

    /// Forgets one task (Redis refused it, or its state is unknown).
    mutating func forget(_ id: String) { cache.remove(id) }

    /// Forgets every task (after Redis may have lost its data).
    mutating func forgetAll() { cache.removeAll() }

    /// Fills in the tasks the batch does not know yet: from the cache, else read in one round trip.
    /// A task Redis refuses to read for now defers its requests.
    mutating func load(_ batch: inout Batch, on link: RedisLink) throws(RedisError) {
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
        let read = try self.read(missing.map { batch.groups[$0].taskId }, on: link)
        var refused: [Int] = []
        for (g, state) in zip(missing, read) {
            switch state {
            case .success(let state):
                batch.groups[g].state = state
            case .failure(let deferral):
                refused.append(g)
                for i in batch.groups[g].indices { batch.defer(i, deferral) }
            }
        }
        for g in refused.reversed() { batch.groups.remove(at: g) }
    }

    /// Reads tasks from Redis, in one round trip: each as it is now, or why Redis refused to
    /// read it for now (it is then forgotten).
    mutating func read(_ taskIds: [String], on link: RedisLink) throws(RedisError) -> [Result<Batch.TaskState, Deferral>] {
        var pipeline = RedisPipeline()
        for id in taskIds {
            pipeline.begin("HGETALL")
            pipeline.add(joining: keys.taskPrefix, id, "}")
        }
        let replies = try link.execute(pipeline)
        return taskIds.enumerated().map { k, id in
            if let message = replies[k].errorMessage, RedisError.isTransient(serverError: message) {
                cache.remove(id)
                return .failure(.refused(message))
            }
            return .success(decode(hash: replies[k].reply, taskId: id))
        }
    }

    mutating func decode(hash reply: RedisReply, taskId: String) -> Batch.TaskState {
        if case .error(let message) = reply {
            logger.error("a stored task cannot be read", metadata: ["redis.key": "\(keys.task(taskId))", "redis.error": "\(message)"])
            return .corrupt(rev: "", reason: message)
        }
        guard let pairs = reply.pairs else { return .corrupt(rev: "", reason: "unexpected reply \(reply)") }
        return decode(pairs: pairs, taskId: taskId)
    }

    mutating func decode(pairs: [(field: [UInt8], value: [UInt8])], taskId: String) -> Batch.TaskState {
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
}
