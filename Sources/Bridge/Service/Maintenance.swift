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

/// The periodic jobs of the consumer loop, each bounded in count so that a batch is never held up
/// for long.
extension StreamConsumer {
    func maintain() async throws(RedisError) {
        let now = ContinuousClock.now
        if now >= maintenance.nextClaim {
            try await claimAbandoned()
            maintenance.nextClaim = now + maintenance.claimEvery
        }
        if now >= maintenance.nextTrim {
            // Nothing handled since the last trim: nothing this consumer acknowledged is left to
            // trim, so an idle shard skips it (two round trips each time, on every shard), but
            // not for longer than a minute (others may have acknowledged entries).
            if maintenance.trimOwed || now >= maintenance.lastTrim + MaintenanceClock.idleTrimEvery {
                // Held back by an entry pending (here or with another consumer): owed still.
                maintenance.trimOwed = !(try trimRequests())
                maintenance.lastTrim = now
            }
            maintenance.nextTrim = now + maintenance.trimEvery
        }
        if now >= maintenance.nextConsumers {
            try removeDeadConsumers()
            maintenance.nextConsumers = now + maintenance.consumersEvery
        }
        if let retention = configuration.retention, now >= maintenance.nextRetention {
            // A full batch may mean more: the next look comes sooner.
            let removed = try applyRetention(olderThan: retention)
            try sweepRepliesOfRemovedTasks()
            maintenance.nextRetention = now + (removed >= Self.retentionBatch ? .seconds(1) : MaintenanceClock.retentionEvery)
        }
    }

    /// Removes the stored replies of tasks that retention removed: their keys are not known when
    /// the task goes (a request id can be anything), so a sweep walks the reply keys with `SCAN`,
    /// some thousands per look, resuming where it stopped (on a cluster, per master). A reply goes
    /// when its task is gone and it was decided against the task (it has a `rev`); a reply to a
    /// request for a task that never existed (a 404) stays, so that its repeats are still answered
    /// from it until it expires. Shard 0's reader sweeps for all: the keyspace is one.
    func sweepRepliesOfRemovedTasks() throws(RedisError) {
        guard shard == 0 else { return }
        let nodes =
            try commands.clusterSlotMap().map { $0.masters.map { RedisNode(endpoint: $0) } } ?? [RedisNode(endpoint: commands.configuration.endpoint)]
        for node in nodes {
            var cursor = maintenance.replyCursors[node.description] ?? "0"
            for _ in 0..<10 {
                var scan = RedisPipeline()
                scan.begin("SCAN")
                for word in [cursor, "MATCH", keys.replyPrefix + "*", "COUNT", "1000"] { scan.add(word) }
                let reply = try commands.execute(onEach: [(node, scan)])[0][0].reply
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string else { break }
                cursor = next
                let replyKeys = (parts[1].array ?? []).compactMap(\.string)
                // `<prefix>:reply:{<id>}:<request id>`: the id ends at the first `}` (an id never
                // starts with one, and the hash tag ends there too).
                let owners = replyKeys.map { key in String(key.dropFirst(keys.replyPrefix.count).prefix { $0 != "}" }) }
                if !replyKeys.isEmpty {
                    let exists = try commands.execute(owners.map { RedisCommand("EXISTS", keys.task($0)) })
                    let orphans = zip(replyKeys, exists).filter { $0.1.int == 0 }.map(\.0)
                    if !orphans.isEmpty {
                        let stored = try commands.execute(orphans.map { RedisCommand("GET", $0) })
                        // The reply names its task: an id with a `}` inside reads short from the key.
                        var candidates: [(key: String, task: String)] = []
                        for (key, value) in zip(orphans, stored) {
                            guard let bytes = value.bytes, case .object(let reply)? = try? JSONParser.accepted.parse(bytes), reply["rev"] != nil,
                                let task = reply["taskId"]?.stringValue
                            else { continue }
                            candidates.append((key, task))
                        }
                        let still = try commands.execute(candidates.map { RedisCommand("EXISTS", keys.task($0.task)) })
                        let gone = zip(candidates, still).filter { $0.1.int == 0 }.map(\.0.key)
                        if !gone.isEmpty { _ = try commands.execute(gone.map { RedisCommand("UNLINK", $0) }) }
                    }
                }
                if cursor == "0" { break }
            }
            maintenance.replyCursors[node.description] = cursor
        }
    }

    /// Most tasks one look removes, and most it inspects.
    static let retentionBatch = 100
    static let retentionInspected = 1000

    /// Removes completed tasks of this shard's index whose `completed` time is before now minus
    /// `age` (contract section 9), with their index entries (their stored replies follow, with
    /// ``sweepRepliesOfRemovedTasks()``): each with a script that deletes the
    /// task only if its revision is still the one read (an update in between keeps it). Running
    /// tasks are never candidates: they sit in the index's `none` set. Candidates come oldest
    /// `created` first (a task completes after it is created, so none older is missed); an index
    /// entry whose task is gone is removed too. Answers how many tasks it removed.
    func applyRetention(olderThan age: Duration) throws(RedisError) -> Int {
        let cutoff = Int64(RFC3339.unixMilliseconds()) - Int64(age.components.seconds) * 1000
        var removed = 0
        for status in TaskIndexEntry.statuses where status != TaskIndexEntry.notCompleted {
            var offset = 0
            while removed < Self.retentionBatch, offset < Self.retentionInspected {
                let index = keys.index(status)
                let ids = (try commands.execute(RedisCommand("ZRANGE", index, "-inf", String(cutoff), "BYSCORE", "LIMIT", offset, 100)).array ?? [])
                    .compactMap(\.string)
                guard !ids.isEmpty else { break }
                let reads = try commands.execute(ids.map { RedisCommand("HMGET", keys.task($0), "completed", "_rev") })
                var deletions: [RedisCommand] = []
                var gone: [String] = []
                for (id, read) in zip(ids, reads) {
                    let values = read.array ?? []
                    guard values.count == 2, let rev = values[1].string else {
                        gone.append(id)
                        continue
                    }
                    guard let completed = values[0].string.flatMap({ RFC3339.unixMilliseconds(of: $0) }), completed < cutoff else {
                        offset += 1
                        continue
                    }
                    deletions.append(RedisCommand("EVAL", Scripts.removeIfAt, 1, keys.task(id), rev))
                    gone.append(id)
                }
                var pipeline = deletions
                for id in gone { pipeline.append(RedisCommand("ZREM", index, id)) }
                let replies = try commands.execute(pipeline)
                let count = replies.prefix(deletions.count).filter { $0.int == 1 }.count
                removed += count
                metrics.retentionRemovals.increment(by: count)
                if ids.count < 100 { break }
            }
        }
        if removed > 0 { logger.info("retention removed completed tasks", metadata: ["count": "\(removed)"]) }
        return removed
    }

    /// Entries pending longer than the claim idle time belong to consumers that died or hang.
    /// Those already delivered `maxDeliveries` times go to the dead-letter stream; the others are
    /// claimed with `XAUTOCLAIM` and processed here.
    func claimAbandoned() async throws(RedisError) {
        try recordGroupGauges()
        let idle = configuration.claimIdle.milliseconds
        let pending = try commands.execute(
            RedisCommand("XPENDING", keys.requests, keys.group, "IDLE", idle, "-", "+", configuration.batchSize)
        )
        try deadLetter(Self.overdelivered(pending, limit: configuration.maxDeliveries), minIdle: idle)
        var cursor = "0-0"
        for _ in 0..<10 {
            let reply = try commands.value(
                of: RedisCommand(
                    "XAUTOCLAIM",
                    keys.requests,
                    keys.group,
                    configuration.consumer,
                    idle,
                    cursor,
                    "COUNT",
                    configuration.batchSize,
                    // Only the ids, and without counting a delivery: the counts are checked next.
                    "JUSTID"
                )
            )
            let parts = reply.elements
            guard parts.count >= 2, let next = parts[0].string else { break }
            let ids = parts[1].elements.compactMap(\.string)
            if !ids.isEmpty {
                let entries = try takeOver(ids)
                if !entries.isEmpty {
                    metrics.claimed.increment(by: entries.count)
                    logger.info("claimed abandoned entries", metadata: ["count": "\(entries.count)", "first": "\(entries[0].id)"])
                    try await handle(entries)
                }
            }
            cursor = next
            if cursor == "0-0" { break }
        }
    }

    /// Entries just claimed (as ids, their delivery counts untouched) are checked against the
    /// delivery limit before they are read: those over it go to the dead-letter stream, the others
    /// are claimed again, which counts this delivery and returns them. Checking the ids claimed,
    /// rather than only the `XPENDING IDLE` list before the claim, leaves no gap for an entry that
    /// became idle enough in between.
    private func takeOver(_ ids: [String]) throws(RedisError) -> [StreamEntry] {
        var counts = RedisPipeline()
        for id in ids {
            counts.begin("XPENDING")
            for word in [keys.requests, keys.group, "IDLE", "0", id, id, "1", configuration.consumer] { counts.add(word) }
        }
        let rows = try commands.execute(counts)
        var over: [(id: String, deliveries: Int64, consumer: String)] = []
        var fresh: [String] = []
        for (k, id) in ids.enumerated() {
            // One row, `[id, consumer, idle, deliveries]`, or none when the entry is gone.
            let found = rows[k].elements
            let row = found.isEmpty ? nil : found[0].elements
            let deliveries = row.flatMap { $0.count >= 4 ? $0[3].int : nil } ?? 0
            if deliveries >= Int64(configuration.maxDeliveries) {
                over.append((id, deliveries, "a consumer that stopped answering"))
            } else {
                fresh.append(id)
            }
        }
        try deadLetter(over, minIdle: 0)
        guard !fresh.isEmpty else { return [] }
        let claimed = try commands.value(
            of: RedisCommand("XCLAIM", arguments: [keys.requests, keys.group, configuration.consumer, "0"] + fresh)
        )
        return StreamEntry.list(claimed)
    }

    /// Reads the group's pending count and lag into the metrics.
    func recordGroupGauges() throws(RedisError) {
        let reply = try commands.execute([RedisCommand("XINFO", "GROUPS", keys.requests)])[0]
        for group in reply.array ?? [] {
            let info = group.map
            guard info["name"]?.string == keys.group else { continue }
            let gauges = configuration.shards > 1 ? (metrics.shard(shard).pending, metrics.shard(shard).lag) : (metrics.pending, metrics.lag)
            if let pending = info["pending"]?.int { gauges.0.record(pending) }
            if let lag = info["lag"]?.int { gauges.1.record(lag) }
        }
    }

    /// The ids (and delivery counts) in an extended `XPENDING` reply that reached the limit.
    static func overdelivered(_ reply: RedisReply, limit: Int) -> [(id: String, deliveries: Int64, consumer: String)] {
        guard case .array(let rows) = reply else { return [] }
        return rows.compactMap { row in
            guard case .array(let f) = row, f.count >= 4, let id = f[0].string, let consumer = f[1].string, let count = f[3].int,
                count >= limit
            else { return nil }
            return (id, count, consumer)
        }
    }

    /// Moves entries to the dead-letter stream with the reason, answers them 500 (unless a reply
    /// was stored before: then the entry was done and only its acknowledgement was lost), and
    /// acknowledges them. Claims each first, so that an entry another consumer just took is left
    /// alone.
    ///
    /// In that order, each step only once the one before it is confirmed: dead letter, stored 500,
    /// then the reply and the acknowledgement. A 500 stored for an entry that never reached the
    /// dead-letter stream would be found on the next pass and the entry acknowledged: lost. A
    /// failure after the dead letter leaves the entry pending; the next pass writes the dead
    /// letter again (a duplicate, harmless: replaying both applies the request once).
    func deadLetter(_ entries: [(id: String, deliveries: Int64, consumer: String)], minIdle: Int64) throws(RedisError) {
        guard !entries.isEmpty else { return }
        let claimed = try commands.value(
            of: RedisCommand("XCLAIM", arguments: [keys.requests, keys.group, configuration.consumer, String(minIdle)] + entries.map(\.id))
        )
        let byId = Dictionary(entries.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for entry in StreamEntry.list(claimed) {
            guard let info = byId[entry.id] else { continue }
            guard let fields = entry.fields else {
                try commands.execute(RedisCommand("XACK", keys.requests, keys.group, entry.id))
                continue
            }
            let request = decoder.decode(entryId: entry.id, fields: fields)
            let replyKey = keys.reply(taskId: request.taskId, requestId: request.requestId)
            if let stored = try commands.value(of: RedisCommand("GET", replyKey)).bytes {
                try confirmReplicated()
                try answer(request, reply: Array(stored), entryId: entry.id)
                continue
            }
            let reason =
                "delivered \(info.deliveries) times without being acknowledged (last to \(info.consumer)); the bridges handling it may have crashed on it"
            var record = RedisCommand("XADD", keys.dead, "MAXLEN", "~", configuration.deadMaxLength, "*")
            for (field, value) in fields {
                record.append(field)
                record.append(value)
            }
            for (field, value) in [("dead-reason", reason), ("dead-entry-id", entry.id), ("dead-deliveries", String(info.deliveries))] {
                record.append(field)
                record.append(value)
            }
            try commands.execute(record)
            let response = TaskResponse.error(500, "\(DeadLetter.replyMarker) \(keys.dead): \(reason)")
            let reply = response.replyJSON(requestId: request.requestId, taskId: request.taskId)
            // SET NX GET: a reply stored meanwhile (the request was done after all) is the answer.
            let stored = try commands.value(
                of: RedisCommand("SET", replyKey, reply, "NX", "GET", "EX", max(1, configuration.replyTTL.components.seconds))
            )
            try confirmReplicated()
            try answer(request, reply: stored.bytes.map { Array($0) } ?? reply, entryId: entry.id)
            metrics.deadLettered.increment()
            metrics.countRequest(path: .stream, status: 500)
            logger.error(
                "moved a request to the dead-letter stream",
                metadata: ["entry.id": "\(entry.id)", "task.id": "\(request.taskId)", "deliveries": "\(info.deliveries)"]
            )
        }
    }

    /// With `--min-replicas`: waits until that many replicas have what this connection wrote and
    /// read (a marker write first, so that `WAIT` covers replies others stored); throws when
    /// they do not confirm in time, leaving the entry pending. The shortfall is the step's
    /// deferral, so that the consumer tries again soon, as after a batch's shortfall (`WAIT`
    /// already waited).
    private func confirmReplicated() throws(RedisError) {
        guard let replication else { return }
        if let shortfall = try replication.execute(RedisPipeline(), on: commands, confirming: "the dead letter").shortfall {
            noteDeferral(shortfall)
            throw RedisError(code: .serverError, message: shortfall.message)
        }
    }

    /// Publishes a stored reply on the request's `reply-to` and acknowledges its entry, in one
    /// `MULTI`/`EXEC`: both or neither.
    private func answer(_ request: PatchRequest, reply: [UInt8], entryId: String) throws(RedisError) {
        var commands = [RedisCommand("MULTI")]
        if let replyTo = request.replyTo {
            if configuration.pubsub == .sharded {
                // A shard channel is not in the stream's slot: published first, on its own node.
                _ = try self.commands.execute(RedisCommand("SPUBLISH", replyTo, reply))
            } else {
                commands.append(RedisCommand("PUBLISH", replyTo, reply))
            }
        }
        commands.append(RedisCommand("XACK", keys.requests, keys.group, entryId))
        commands.append(RedisCommand("EXEC"))
        for reply in try self.commands.execute(commands) { _ = try reply.get() }
    }

    /// Trims acknowledged entries from the request stream, never past the oldest entry a group
    /// still has pending or has not read yet. Whether the trim went as far as every group has
    /// read (no entry pending held it back): if not, it is tried again at the next turn.
    @discardableResult
    func trimRequests() throws(RedisError) -> Bool {
        let groups = try commands.execute([RedisCommand("XINFO", "GROUPS", keys.requests)])[0]
        guard case .array(let rows) = groups else { return false }
        var keep: String?
        var heldBack = false
        for row in rows {
            let info = row.map
            guard let name = info["name"]?.string, let lastDelivered = info["last-delivered-id"]?.string else { return false }
            var candidate = StreamEntry.successor(of: lastDelivered)
            if let pending = info["pending"]?.int, pending > 0 {
                let summary = try commands.execute(RedisCommand("XPENDING", keys.requests, name))
                guard case .array(let parts) = summary, parts.count >= 2, let oldest = parts[1].string else { return false }
                candidate = oldest
                heldBack = true
            }
            if keep == nil || StreamEntry.compare(candidate, keep!) { keep = candidate }
        }
        if let keep, keep != "0-1" {
            _ = try commands.execute(RedisCommand("XTRIM", keys.requests, "MINID", "~", keep))
        }
        return !heldBack
    }

    /// Removes other consumers that have nothing pending and have been idle past the limit.
    func removeDeadConsumers() throws(RedisError) {
        let reply = try commands.execute([RedisCommand("XINFO", "CONSUMERS", keys.requests, keys.group)])[0]
        guard case .array(let rows) = reply else { return }
        let limit = configuration.deadConsumerIdle.milliseconds
        var removals: [RedisCommand] = []
        for row in rows {
            let info = row.map
            guard let name = info["name"]?.string, name != configuration.consumer, info["pending"]?.int == 0,
                let idle = info["inactive"]?.int ?? info["idle"]?.int, idle > limit
            else { continue }
            removals.append(RedisCommand("XGROUP", "DELCONSUMER", keys.requests, keys.group, name))
        }
        guard !removals.isEmpty else { return }
        _ = try commands.execute(removals)
        logger.info("removed idle consumers with nothing pending", metadata: ["count": "\(removals.count)"])
    }
}
