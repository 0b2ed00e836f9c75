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

/// Runs a ``ListQuery`` against the list index (``TaskIndexEntry``) and the tasks: the index
/// gives the order and the status, the tasks everything else. With `--shards N` each shard has
/// its index; they are merged here and their counts summed.
///
/// A list reads the change feeds' positions first, in the same round trip as the index, so that
/// the position it answers (`X-Last-Event-Id`) is no later than what it shows: a watch from there
/// may repeat a change the list showed, never miss one.
struct TaskLister {
    private let keys: Keys
    /// One set of names per shard (the names of one Redis when there is one stream).
    private let scopes: [Keys]
    private let logger: Logger

    init(configuration: BridgeConfiguration, logger: Logger) {
        let base = Keys(prefix: configuration.prefix, shardedPubSub: configuration.pubsub == .sharded)
        keys = base
        scopes = (0..<configuration.shards).map { base.forShard($0, of: configuration.shards) }
        self.logger = logger
    }

    /// What a list answers.
    struct Page {
        var tasks: [TaskRecord]
        /// The number of tasks that pass the filters (only when the query asked for it).
        var total: Int?
        /// The change feeds' positions before the list was read: one stream id, or one per shard
        /// joined by `,` in shard order.
        var position: String
    }

    /// Tasks read per round trip while a filter on their properties is applied.
    static let chunk = 500

    func list(_ query: ListQuery, on link: RedisLink) throws(RedisError) -> Page {
        var pipeline = RedisPipeline()
        for scope in scopes {
            pipeline.begin("XREVRANGE")
            pipeline.add(scope.events)
            for word in ["+", "-", "COUNT", "1"] { pipeline.add(word) }
        }
        if let ids = query.ids {
            var seen = Set<String>()
            let unique = ids.filter { seen.insert($0).inserted }
            for id in unique {
                pipeline.begin("HGETALL")
                pipeline.add(keys.task(id))
            }
            let replies = try execute(pipeline, on: link)
            let position = Self.position(replies, count: scopes.count)
            var found: [(key: (score: Int64, id: String), record: TaskRecord)] = []
            for (k, id) in unique.enumerated() {
                if let record = decode(replies[scopes.count + k], id: id), query.admits(record) {
                    found.append(((TaskIndexEntry(record).score, id), record))
                }
            }
            found.sort { a, b in Self.precedes(a.key, b.key, newestFirst: query.newestFirst) }
            let page = found.dropFirst(query.offset).prefix(query.limit).map(\.record)
            return Page(tasks: Array(page), total: query.count ? found.count : nil, position: position)
        }
        let statuses = TaskIndexEntry.statuses.filter { query.statuses?.contains($0) ?? true }
        // Saturating: an offset near Int.max is valid (it lists nothing), and must not trap.
        let (sum, overflow) = query.offset.addingReportingOverflow(query.limit)
        let wanted = overflow ? Int.max : sum
        // Without filters on properties, each set's first `offset + limit` members hold the page.
        let whole = query.readsProperties
        var ranges = 0
        if whole || wanted > 0 {
            for scope in scopes {
                for status in statuses {
                    pipeline.begin("ZRANGE")
                    pipeline.add(scope.index(status))
                    pipeline.add("0")
                    pipeline.add(whole ? "-1" : String(wanted - 1))
                    if query.newestFirst { pipeline.add("REV") }
                    pipeline.add("WITHSCORES")
                    ranges += 1
                }
            }
        }
        let counted = query.count && !whole
        if counted {
            for scope in scopes {
                for status in statuses {
                    pipeline.begin("ZCARD")
                    pipeline.add(scope.index(status))
                }
            }
        }
        let replies = try execute(pipeline, on: link)
        let position = Self.position(replies, count: scopes.count)
        var candidates: [(score: Int64, id: String)] = []
        for k in 0..<ranges {
            var members = replies[scopes.count + k].elements.makeIterator()
            while let member = members.next()?.string, let score = members.next()?.string {
                candidates.append((Int64(score) ?? Double(score).map { Int64($0) } ?? 0, member))
            }
        }
        if ranges > 1 {
            candidates.sort { Self.precedes($0, $1, newestFirst: query.newestFirst) }
            // A task indexed by two shards (its requests sent to the wrong stream) is listed once.
            var seen = Set<String>()
            candidates.removeAll { !seen.insert($0.id).inserted }
        }
        var total: Int?
        if counted {
            total = (0..<(scopes.count * statuses.count)).reduce(0) { $0 + Int(replies[scopes.count + ranges + $1].int ?? 0) }
        }
        if !whole {
            let ids = candidates.dropFirst(query.offset).prefix(query.limit).map(\.id)
            // A task changed since the index was read is checked against the filter again.
            let tasks = try read(ids, on: link).filter { query.admits($0) }
            return Page(tasks: tasks, total: total, position: position)
        }
        var matched: [TaskRecord] = []
        var matchCount = 0
        var start = 0
        while start < candidates.count, query.count || matchCount < wanted {
            let ids = candidates[start..<min(start + Self.chunk, candidates.count)].map(\.id)
            start += Self.chunk
            for record in try read(ids, on: link) where query.admits(record) {
                if matchCount >= query.offset, matched.count < query.limit { matched.append(record) }
                matchCount += 1
            }
        }
        return Page(tasks: matched, total: query.count ? matchCount : nil, position: position)
    }

    /// The order of the list: by `created`, then by id, both in the query's direction.
    private static func precedes(_ a: (score: Int64, id: String), _ b: (score: Int64, id: String), newestFirst: Bool) -> Bool {
        if a.score != b.score { return newestFirst ? a.score > b.score : a.score < b.score }
        // By bytes, as Redis orders the members of equal score.
        return newestFirst ? b.id.utf8.lexicographicallyPrecedes(a.id.utf8) : a.id.utf8.lexicographicallyPrecedes(b.id.utf8)
    }

    /// The tasks of `ids` that exist and decode, in that order.
    private func read(_ ids: [String], on link: RedisLink) throws(RedisError) -> [TaskRecord] {
        guard !ids.isEmpty else { return [] }
        var pipeline = RedisPipeline()
        for id in ids {
            pipeline.begin("HGETALL")
            pipeline.add(keys.task(id))
        }
        let replies = try execute(pipeline, on: link)
        return ids.indices.compactMap { decode(replies[$0], id: ids[$0]) }
    }

    private func decode(_ value: RedisValue, id: String) -> TaskRecord? {
        guard let pairs = value.reply.pairs else { return nil }
        do {
            return try TaskRecord(hash: pairs)
        } catch {
            logger.error("a stored task is corrupt", metadata: ["redis.key": "\(keys.task(id))", "error": "\(error)"])
            return nil
        }
    }

    /// Runs a pipeline whose every reply matters: Redis refusing any command is thrown.
    private func execute(_ pipeline: RedisPipeline, on link: RedisLink) throws(RedisError) -> RedisReplies {
        let replies = try link.execute(pipeline)
        for k in 0..<replies.count {
            if let message = replies[k].errorMessage { throw RedisError(code: .serverError, message: message) }
        }
        return replies
    }

    /// The feeds' last entry ids (`0-0` for an empty one), from the first `count` replies.
    private static func position(_ replies: RedisReplies, count: Int) -> String {
        (0..<count).map { k in
            var entries = replies[k].elements.makeIterator()
            var parts = entries.next()?.elements.makeIterator()
            return parts?.next()?.string ?? "0-0"
        }.joined(separator: ",")
    }
}
