//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Logging
import Metrics
import Redis
import TaskStatus

/// What happens once a batch's answers are decided: the change-feed entries, the notifications the
/// commit script did not publish (answers found stored, or all of them when replicas confirm
/// first), the replies on their `reply-to` channels and, on the stream, the acknowledgements.
/// One per path: ``StreamAnnouncer`` and ``HTTPAnnouncer``.
protocol Announcer {
    /// Announces `batch` (and acknowledges `extraAcks`, entries with nothing to answer) on `link`.
    mutating func announce(_ batch: Batch, acknowledging extraAcks: [String], on link: RedisLink) throws(RedisError)
    /// Waits until Redis has answered what was sent without waiting.
    mutating func settle(on link: RedisLink) throws(RedisError)
    /// Takes the failure of announcements sent without waiting, read by now.
    mutating func takeFailure(on link: RedisLink) -> String?
    /// Whether announcements Redis refused wait to be sent again.
    var hasOwed: Bool { get }
    /// Sends again the announcements Redis refused, with nothing new.
    mutating func retryOwed(on link: RedisLink) throws(RedisError)
    /// The connection failed: what was sent without waiting may not have run.
    mutating func connectionFailed()
}

/// The stream's announcer: one `MULTI`/`EXEC`, sent without waiting, so that either all of it
/// happens or none (a refused change-feed entry must not be acknowledged); a failure, read with
/// the next round trip, leaves the entries pending for the consumer to process again.
struct StreamAnnouncer: Announcer {
    private var writer: AnnouncementWriter
    private let logger: Logger
    /// Why an announcement sent without waiting failed (its entries stay pending).
    private var failure: String?
    private var pipeline = RedisPipeline()

    init(configuration: BridgeConfiguration, logger: Logger, metrics: BridgeMetrics) {
        writer = AnnouncementWriter(configuration: configuration, metrics: metrics, path: .stream)
        self.logger = logger
    }

    mutating func announce(_ batch: Batch, acknowledging extraAcks: [String], on link: RedisLink) throws(RedisError) {
        // On a cluster, shard channels are not in the transaction's slot: their messages go
        // first, on their own nodes, and the transaction (the acknowledgements) only once they
        // went out. One Redis takes them inside the transaction.
        let apart = writer.keys.shardedPubSub && link.routesBySlot
        var publications = RedisPipeline()
        pipeline.removeAll()
        pipeline.begin(Words.multi)
        let header = pipeline.count
        writer.write(batch, acknowledging: extraAcks, to: &pipeline, publications: &publications, apart: apart)
        guard pipeline.count > header else { return }
        if !publications.isEmpty {
            noteDeferredErrors(on: link)
            for error in try link.executeForErrors(publications) {
                log(error.message)
                if failure == nil { failure = error.message }
            }
            // Not acknowledged: the entries are processed again, and answered from their stored replies.
            if failure != nil { return }
        }
        pipeline.begin(Words.exec)
        try link.sendDeferred(pipeline)
        noteDeferredErrors(on: link)
    }

    mutating func settle(on link: RedisLink) throws(RedisError) {
        try link.settle()
        noteDeferredErrors(on: link)
    }

    mutating func takeFailure(on link: RedisLink) -> String? {
        noteDeferredErrors(on: link)
        defer { failure = nil }
        return failure
    }

    var hasOwed: Bool { false }

    mutating func retryOwed(on link: RedisLink) throws(RedisError) {}

    /// Nothing to do: the entries stay pending, and are processed again.
    mutating func connectionFailed() {}

    private mutating func noteDeferredErrors(on link: RedisLink) {
        for message in link.takeDeferredErrors() {
            log(message)
            if failure == nil { failure = message }
        }
    }

    private func log(_ message: String) {
        logger.warning("announcing an update failed", metadata: ["redis.error": "\(message)"])
    }
}

/// The HTTP path's announcer (there is nothing to acknowledge). On one Redis: one `MULTI`/`EXEC`
/// sent without waiting, so that the callers are answered without a second round trip; its
/// answer is read with the next round trip (or by the retry a second later). When Redis refused
/// the transaction (`EXECABORT`: nothing of it ran), or the connection broke before its answer
/// was read, its commands are kept and sent again, with the next batch or a second later: at
/// least once, like the stream's announcements after a crash. On a cluster, whose shard feeds lie
/// in other slots than one transaction may touch: one round trip without a transaction, and a
/// refused command is kept and sent again.
struct HTTPAnnouncer: Announcer {
    private var writer: AnnouncementWriter
    private let logger: Logger
    /// Announcements Redis refused after their commit, sent again before the next ones.
    private var owed: [RedisCommand] = []
    private var pipeline = RedisPipeline()
    /// The transaction sent without waiting whose answer is not checked yet (empty: none).
    private var unchecked = RedisPipeline()

    /// Most announcements kept for a retry; past it the oldest are dropped (and logged).
    static let owedLimit = 10_000

    init(configuration: BridgeConfiguration, logger: Logger, metrics: BridgeMetrics) {
        writer = AnnouncementWriter(configuration: configuration, metrics: metrics, path: .http)
        self.logger = logger
    }

    mutating func announce(_ batch: Batch, acknowledging extraAcks: [String], on link: RedisLink) throws(RedisError) {
        try check(on: link)
        let transaction = !link.routesBySlot
        pipeline.removeAll()
        if transaction { pipeline.begin(Words.multi) }
        let header = pipeline.count
        for command in owed { pipeline.append(command) }
        owed = []
        var unused = RedisPipeline()
        writer.write(batch, acknowledging: extraAcks, to: &pipeline, publications: &unused, apart: false)
        guard pipeline.count > header else { return }
        if transaction {
            pipeline.begin(Words.exec)
            do {
                try link.sendDeferred(pipeline)
            } catch {
                keep(pipeline, commands: header..<(pipeline.count - 1))
                throw error
            }
            swap(&pipeline, &unchecked)
            return
        }
        let errors: [(index: Int, message: String)]
        do {
            errors = try link.executeForErrors(pipeline)
        } catch {
            // Whether Redis ran them is unknown: sent again (at least once).
            keep(pipeline, commands: header..<pipeline.count)
            throw error
        }
        for error in errors {
            logger.warning("announcing an update failed", metadata: ["redis.error": "\(error.message)"])
            keep(RedisCommand(arguments: pipeline.arguments(of: error.index)))
        }
    }

    mutating func settle(on link: RedisLink) throws(RedisError) { try check(on: link) }

    mutating func takeFailure(on link: RedisLink) -> String? { nil }

    var hasOwed: Bool { !owed.isEmpty || !unchecked.isEmpty }

    mutating func retryOwed(on link: RedisLink) throws(RedisError) {
        guard hasOwed else { return }
        try announce(Batch([]), acknowledging: [], on: link)
    }

    mutating func connectionFailed() {
        keepTransaction(unchecked)
        unchecked.removeAll()
    }

    /// Reads the answer of the transaction sent without waiting, when a round trip has not read
    /// it yet; keeps its commands when Redis refused it or the connection broke first.
    private mutating func check(on link: RedisLink) throws(RedisError) {
        guard !unchecked.isEmpty else { return }
        do {
            try link.settle()
        } catch {
            connectionFailed()
            throw error
        }
        let errors = link.takeDeferredErrors()
        for message in errors { logger.warning("announcing an update failed", metadata: ["redis.error": "\(message)"]) }
        // A command refused as it was queued aborts the transaction: nothing of it ran. An error
        // while it ran (a key of another type) leaves the rest done: sending it again would
        // repeat what went out, every second, for good.
        if errors.contains(where: { $0.hasPrefix("EXECABORT") }) { keepTransaction(unchecked) }
        unchecked.removeAll()
    }

    /// Keeps a transaction's commands (without its `MULTI` and `EXEC`) to send again.
    private mutating func keepTransaction(_ transaction: RedisPipeline) {
        guard transaction.count > 2 else { return }
        keep(transaction, commands: 1..<(transaction.count - 1))
    }

    /// Keeps the commands at `positions` of `pipeline` to send again.
    private mutating func keep(_ pipeline: RedisPipeline, commands positions: Range<Int>) {
        for k in positions { keep(RedisCommand(arguments: pipeline.arguments(of: k))) }
    }

    private mutating func keep(_ command: RedisCommand) {
        if owed.count < Self.owedLimit {
            owed.append(command)
        } else {
            logger.error("dropped an announcement Redis kept refusing")
        }
    }
}

/// Writes a batch's announcements into a pipeline, for either path: per answered request its
/// notifications (when the script did not publish them), its change-feed entry, its reply, and
/// the acknowledgements last.
struct AnnouncementWriter {
    let keys: Keys
    private let words: Words
    private let metrics: BridgeMetrics
    private let path: BridgeMetrics.Path
    /// The change feed's cap, by entries and by bytes.
    private var feedBound: FeedBound
    /// Whether the announcement moves tasks in the list index (on a cluster, where the commit
    /// script cannot reach the index's slots), and the shard count that places a task's index.
    private let setsIndex: Bool
    private let shards: Int

    init(configuration: BridgeConfiguration, metrics: BridgeMetrics, path: BridgeMetrics.Path) {
        self.keys = configuration.keys
        self.words = Words(keys: configuration.keys, shards: configuration.shards)
        self.metrics = metrics
        self.path = path
        self.feedBound = FeedBound(maxEntries: configuration.eventsMaxLength, maxBytes: configuration.eventsMaxBytes)
        self.setsIndex = configuration.redis.cluster != nil
        self.shards = configuration.shards
    }

    /// Moves a task in the index (``TaskIndexEntry/placing(_:in:)``). The stream's consumer keeps
    /// it in its own shard's index, like the change-feed entry.
    private func addIndex(_ entry: TaskIndexEntry, taskId: String, to pipeline: inout RedisPipeline) {
        for command in entry.placing(taskId, in: path == .stream ? keys : keys.forTask(taskId, of: shards)) { pipeline.append(command) }
    }

    /// Adds the announcements of `batch` to `pipeline`; with `apart`, the shard-channel messages
    /// go to `publications` instead (they cannot be in the transaction on a cluster).
    mutating func write(
        _ batch: Batch,
        acknowledging extraAcks: [String],
        to pipeline: inout RedisPipeline,
        publications: inout RedisPipeline,
        apart: Bool
    ) {
        func addMessage(_ body: (inout RedisPipeline) -> Void) {
            if apart { body(&publications) } else { body(&pipeline) }
        }
        let nowMilliseconds = batch.sentAt ?? Int64(RFC3339.unixMilliseconds())
        var tally = RequestTally()
        var acks: [String] = []
        let deferring = !batch.deferrals.isEmpty
        let publish = keys.shardedPubSub ? Words.spublish : Words.publish
        // The answers are read in place, not copied: each holds several buffers.
        for i in batch.requests.indices where batch.answers[i].response.status != 0 {
            if deferring, batch.deferrals[i] != nil { continue }
            if batch.answers[i].announced {
                // The commit script announced it: counted only.
                if let entryId = batch.requests[i].entryId { recordLatency(of: entryId, now: nowMilliseconds) }
                tally.count(path: path, status: batch.answers[i].response.status)
                continue
            }
            if let rev = batch.answers[i].response.rev, batch.answers[i].notification != nil {
                if batch.answers[i].needsPublishing {
                    if !keys.shardedPubSub {
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
                    path == .stream || words.shardEvents.isEmpty
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
                if setsIndex, let entry = batch.answers[i].index {
                    // Not in the stream's transaction: the index's slots are not its slot.
                    if path == .stream {
                        addIndex(entry, taskId: batch.requests[i].taskId, to: &publications)
                    } else {
                        addIndex(entry, taskId: batch.requests[i].taskId, to: &pipeline)
                    }
                }
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
                recordLatency(of: entryId, now: nowMilliseconds)
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
    }
}

extension AnnouncementWriter {
    /// Records how long a stream entry waited for its answer (its id holds when it was added).
    fileprivate func recordLatency(of entryId: String, now nowMilliseconds: Int64) {
        if let created = StreamEntry.parse(entryId).map({ Int64(clamping: $0.ms) }), created <= nowMilliseconds {
            metrics.streamLatency.recordMilliseconds(nowMilliseconds - created)
        }
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
