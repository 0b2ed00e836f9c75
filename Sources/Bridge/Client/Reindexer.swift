//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Redis
import TaskStatus

/// Puts every stored task in the list index (``TaskIndexEntry``): for hashes written before the
/// index existed, or by hand. It walks the keyspace with `SCAN` (on a cluster, every master's),
/// a batch at a time, and saves its cursor after each batch in `<prefix>:reindex`, so that a run
/// stopped half way resumes where it stopped. Setting a task's place is idempotent: a second run
/// changes nothing, and on one Redis an update committed meanwhile is not undone (see ``atomic``).
public struct Reindexer: Sendable {
    let redis: RedisClient
    let keys: Keys
    let shards: Int
    /// On one Redis a script reads the status as it sets the place, so an update in between
    /// cannot be undone; on a cluster the index lies in another slot than the task, and the
    /// status read a moment before is set (the task's next status change sets it again).
    let atomic: Bool

    public init(configuration: RedisConfiguration, prefix: String, shards: Int) {
        redis = RedisClient(configuration: configuration, name: "reindex")
        atomic = configuration.cluster == nil
        keys = Keys(prefix: prefix)
        self.shards = max(1, shards)
    }

    /// How far a run got.
    public struct Progress: Sendable {
        /// Tasks given their place.
        public var indexed = 0
        /// Keys skipped: not a task this program can read (no `created`, or not a hash of ours).
        public var skipped = 0
        /// The nodes done, of how many.
        public var nodesDone = 0
        public var nodes = 0
    }

    /// The key that holds the cursors of a run under way.
    public var progressKey: String { "\(keys.prefix):reindex" }

    /// Runs (or resumes) a pass over every task; `restart` forgets a pass under way.
    public func run(batch: Int = 500, restart: Bool = false, report: @Sendable (Progress) -> Void) async throws -> Progress {
        if restart { try await redis.execute(RedisCommand("DEL", progressKey)) }
        let nodes = try await redis.withLink { link throws(RedisError) -> [RedisNode] in
            guard let map = try link.clusterSlotMap() else { return [RedisNode(endpoint: link.configuration.endpoint)] }
            return map.masters.map { RedisNode(endpoint: $0) }
        }
        var progress = Progress(nodes: nodes.count)
        for node in nodes {
            let name = node.description
            var cursor = try await redis.execute(RedisCommand("HGET", progressKey, name)).string ?? "0"
            if cursor == "done" {
                progress.nodesDone += 1
                continue
            }
            repeat {
                var scan = RedisPipeline()
                scan.begin("SCAN")
                for word in [cursor, "MATCH", "\(keys.prefix):task:{*", "COUNT", String(batch), "TYPE", "hash"] { scan.add(word) }
                let reply = try await redis.withLink { link throws(RedisError) in try link.execute(onEach: [(node, scan)])[0][0].reply }
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string else {
                    throw RedisError(code: .unexpectedReply, message: "SCAN answered \(reply)")
                }
                let ids = (parts[1].array ?? []).compactMap { $0.string.flatMap(taskId(ofKey:)) }
                try await index(ids, progress: &progress)
                cursor = next
                try await redis.execute(RedisCommand("HSET", progressKey, name, cursor == "0" ? "done" : cursor))
                report(progress)
            } while cursor != "0"
            progress.nodesDone += 1
            report(progress)
        }
        // Done everywhere: the next run is a fresh pass.
        try await redis.execute(RedisCommand("DEL", progressKey))
        return progress
    }

    /// Sets a task's (KEYS[1]) place from its status as it is: ARGV the index keys' stem and tag,
    /// the id and the score (from `created`, which never changes).
    static let place =
        TaskIndexEntry.placeFunction + """
            if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
            place(ARGV[1], ARGV[2], redis.call('HGET', KEYS[1], 'completionStatus') or 'none', ARGV[4], ARGV[3])
            return 1
            """

    /// The id in `<prefix>:task:{<id>}`.
    private func taskId(ofKey key: String) -> String? {
        let head = keys.taskPrefix
        guard key.hasPrefix(head), key.hasSuffix("}") else { return nil }
        return String(key.dropFirst(head.count).dropLast())
    }

    private func index(_ ids: [String], progress: inout Progress) async throws {
        guard !ids.isEmpty else { return }
        let reads = try await redis.execute(ids.map { RedisCommand("HMGET", keys.task($0), "created", "completionStatus") })
        var commands: [RedisCommand] = []
        for (id, read) in zip(ids, reads) {
            guard let values = read.array, values.count == 2, let created = values[0].string.flatMap({ RFC3339.unixMilliseconds(of: $0) }) else {
                progress.skipped += 1
                continue
            }
            let status = values[1].string ?? TaskIndexEntry.notCompleted
            let scope = keys.forTask(id, of: shards)
            progress.indexed += 1
            if atomic {
                commands.append(RedisCommand("EVAL", Self.place, 1, keys.task(id), scope.indexStem, scope.indexTag, id, String(created)))
                continue
            }
            commands += TaskIndexEntry(status: status, score: created).placing(id, in: scope)
        }
        for (k, reply) in try await redis.execute(commands).enumerated() {
            if case .error(let message) = reply { throw RedisError(code: .serverError, message: "\(commands[k]): \(message)") }
        }
    }
}
