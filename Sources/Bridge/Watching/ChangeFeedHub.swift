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
public import ServiceLifecycle
import Synchronization
import TaskStatus

/// Live updates for any number of watchers (the HTTP API's Server-Sent Events) from one reader of
/// the change feeds per process: one `XREAD` loop (on one Redis, one `XREAD BLOCK` over every
/// shard's feed; on a cluster, a non-blocking `XREAD` per shard, every 50 ms while idle), and an
/// in-memory fan-out to each watcher's bounded buffer. No Redis connection per watcher; the
/// reader runs only while someone watches.
///
/// A watcher that falls behind by more than ``BridgeConfiguration/watchBuffer`` changes is ended with
/// ``WatchEnding/behind``: it never slows the reader or the others.
public final class ChangeFeedHub: Service, Sendable {
    /// The most changes a resumed watch catches up on from Redis; past it, it lists again.
    public static let backlogLimit = 10_000

    private let feeds: [String]
    /// Changes a watcher may have waiting before it is dropped.
    private let bufferLimit: Int
    /// How long a watcher may go without a byte before it gets a heartbeat.
    private let heartbeat: Duration
    private let taskKeys: Keys
    private let routesBySlot: Bool
    private let reader: RedisClient
    private let queries: RedisClient
    private let logger: Logger
    private let state = Mutex(State())
    private let demand: AsyncStream<Void>
    private let demandContinuation: AsyncStream<Void>.Continuation
    private let delivered = Counter(label: "taskstatus_watch_events_total")
    private let watchers = Gauge(label: "taskstatus_watchers")

    private struct State {
        var subscribers: [UInt64: Subscriber] = [:]
        var nextId: UInt64 = 0
        /// The last entry read on each shard's feed; `nil` while nobody watches.
        var positions: [String]?
        /// Moves whenever the positions are set anew, so that a read begun before is dropped.
        var generation: UInt64 = 0
        var closed = false
    }

    private struct Subscriber {
        let filter: ListQuery
        let continuation: AsyncStream<WatchDelivery>.Continuation
        let ending: WatchEnding
        var lastDelivery: ContinuousClock.Instant
    }

    public init(configuration: BridgeConfiguration, logger: Logger) {
        let keys = Keys(prefix: configuration.prefix, shardedPubSub: configuration.pubsub == .sharded)
        taskKeys = keys
        feeds = (0..<configuration.shards).map { keys.forShard($0, of: configuration.shards).events }
        routesBySlot = configuration.redis.cluster != nil
        bufferLimit = max(1, configuration.watchBuffer)
        heartbeat = configuration.watchHeartbeat
        var blocking = configuration.redis
        blocking.commandTimeout += .seconds(2)
        reader = RedisClient(configuration: blocking, name: "feed-reader")
        queries = RedisClient(configuration: configuration.redis, name: "feed-queries")
        self.logger = logger
        (demand, demandContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Why a watch could not start: its position is no longer in the change feed (or too far
    /// behind), so the watcher must list again; or Redis refused.
    public enum Refusal: Error {
        case gone(String)
        /// Redis refused, with its message.
        case unavailable(String)
    }

    /// A watch: its start, the changes it missed since `from` (in order), then the live ones.
    public struct Watch: Sendable {
        public let start: FeedPosition
        public let backlog: [FeedChange]
        public let live: AsyncStream<WatchDelivery>
        public let ending: WatchEnding
    }

    /// Starts watching the changes `filter` admits: from `from` (catching up on what the change
    /// feed still holds since), or from now.
    public func watch(_ filter: ListQuery, from: FeedPosition?) async throws(Refusal) -> Watch {
        var positions = state.withLock { $0.positions }
        if positions == nil {
            let ends = try await feedEnds()
            positions = state.withLock { state in
                if state.positions == nil {
                    state.positions = ends
                    state.generation += 1
                }
                return state.positions
            }
        }
        let (live, continuation) = AsyncStream.makeStream(of: WatchDelivery.self, bufferingPolicy: .bufferingOldest(bufferLimit))
        let ending = WatchEnding()
        let registered = state.withLock { state -> (id: UInt64, positions: [String])? in
            guard !state.closed, let positions = state.positions else { return nil }
            let id = state.nextId
            state.nextId += 1
            state.subscribers[id] = Subscriber(filter: filter, continuation: continuation, ending: ending, lastDelivery: .now)
            return (id, positions)
        }
        guard let registered else {
            ending.set(.shutdown)
            continuation.finish()
            return Watch(start: FeedPosition(ids: positions ?? []), backlog: [], live: live, ending: ending)
        }
        noteWatchers()
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(registered.id) }
        demandContinuation.yield(())
        let now = FeedPosition(ids: registered.positions)
        guard let from else { return Watch(start: now, backlog: [], live: live, ending: ending) }
        do {
            let backlog = try await catchUp(from: from, to: now, filter: filter)
            return Watch(start: from, backlog: backlog, live: live, ending: ending)
        } catch {
            continuation.finish()
            throw error
        }
    }

    private func unsubscribe(_ id: UInt64) {
        let removed = state.withLock { state in
            let removed = state.subscribers.removeValue(forKey: id) != nil
            // Nobody left: the next watcher starts from the feeds' ends as they are then.
            if state.subscribers.isEmpty { state.positions = nil }
            return removed
        }
        if removed { noteWatchers() }
    }

    private func noteWatchers() {
        watchers.record(state.withLock { $0.subscribers.count })
    }

    public func run() async throws {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await readLoop()
            } onGracefulShutdown: {
                self.close()
            }
        } onCancel: {
            self.close()
        }
    }

    /// Ends every watch (graceful shutdown): each stream ends cleanly.
    private func close() {
        let subscribers = state.withLock { state in
            state.closed = true
            defer { state.subscribers = [:] }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers {
            subscriber.ending.set(.shutdown)
            subscriber.continuation.finish()
        }
        demandContinuation.finish()
    }

    private func readLoop() async {
        var wakeUps = demand.makeAsyncIterator()
        while true {
            let (closed, positions, generation) = state.withLock { ($0.closed, $0.positions, $0.generation) }
            if closed { return }
            guard let positions else {
                // Nobody watches: wait for the first watcher.
                if await wakeUps.next() == nil { return }
                continue
            }
            do {
                var changes = try await read(after: positions)
                if changes.isEmpty, routesBySlot { try? await Task.sleep(for: .milliseconds(50)) }
                try await lookUpProperties(&changes)
                distribute(changes, generation: generation)
            } catch {
                logger.warning("reading the change feed failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// The next changes after `positions`: on one Redis, waiting up to a second for them.
    private func read(after positions: [String]) async throws(RedisError) -> [FeedChange] {
        if !routesBySlot {
            var arguments: [any RedisArgument] = ["COUNT", "1000", "BLOCK", "1000", "STREAMS"]
            arguments += feeds
            arguments += positions
            let reply = try await reader.execute(RedisCommand("XREAD", arguments: arguments))
            var changes: [FeedChange] = []
            for stream in reply.array ?? [] {
                guard let parts = stream.array, parts.count == 2, let name = parts[0].string, let shard = feeds.firstIndex(of: name) else { continue }
                changes += FeedChange.list(parts[1], shard: shard)
            }
            return changes
        }
        // A cluster: one XREAD cannot span the feeds' slots, and a blocking one per shard would
        // hold a connection each; one non-blocking read per shard, in one pipeline.
        let commands = feeds.indices.map { RedisCommand("XREAD", "COUNT", "1000", "STREAMS", feeds[$0], positions[$0]) }
        let replies = try await reader.execute(commands)
        var changes: [FeedChange] = []
        for (shard, reply) in replies.enumerated() {
            if case .error(let message) = reply { throw RedisError(code: .serverError, message: message) }
            for stream in reply.array ?? [] {
                guard let parts = stream.array, parts.count == 2 else { continue }
                changes += FeedChange.list(parts[1], shard: shard)
            }
        }
        return changes
    }

    /// Reads type, launcher and source of the changes that do not carry their task, when a
    /// watcher filters on them.
    private func lookUpProperties(_ changes: inout [FeedChange]) async throws(RedisError) {
        let needed = state.withLock { state in state.subscribers.values.contains { $0.filter.readsProperties } }
        guard needed else { return }
        let missing = changes.indices.filter { changes[$0].properties == nil }
        guard !missing.isEmpty else { return }
        let replies = try await queries.execute(
            missing.map { RedisCommand("HMGET", taskKeys.task(changes[$0].taskId), "type", "launcher", "target") }
        )
        for (k, i) in missing.enumerated() {
            guard let values = replies[k].array, values.count == 3, values[0].string != nil else { continue }
            var sourceId: String?
            if let target = values[2].bytes, case .object(let object)? = try? JSONParser.accepted.parse(target) {
                sourceId = object["id"]?.stringValue
            }
            changes[i].properties = FeedChange.Properties(type: values[0].string, launcher: values[1].string, sourceId: sourceId)
        }
    }

    private func distribute(_ changes: [FeedChange], generation: UInt64) {
        let now = ContinuousClock.now
        var dropped: [AsyncStream<WatchDelivery>.Continuation] = []
        var count = 0
        state.withLock { state in
            // Read from positions set anew since (everyone left and someone came): not theirs.
            guard state.generation == generation, var positions = state.positions else { return }
            for change in changes where change.shard < positions.count {
                if StreamEntry.compare(positions[change.shard], change.entryId) { positions[change.shard] = change.entryId }
            }
            state.positions = positions
            for (id, subscriber) in state.subscribers {
                var sent = false
                var overflowed = false
                for change in changes where subscriber.filter.admits(change) {
                    if case .dropped = subscriber.continuation.yield(.change(change)) {
                        overflowed = true
                        break
                    }
                    sent = true
                    count += 1
                }
                if !overflowed, !sent, now - subscriber.lastDelivery >= heartbeat {
                    if case .dropped = subscriber.continuation.yield(.heartbeat) { overflowed = true } else { sent = true }
                }
                if overflowed {
                    subscriber.ending.set(.behind)
                    // Finished after the lock: finishing calls back into `unsubscribe`.
                    dropped.append(subscriber.continuation)
                    state.subscribers[id] = nil
                } else if sent {
                    state.subscribers[id]?.lastDelivery = now
                }
            }
            if state.subscribers.isEmpty { state.positions = nil }
        }
        if count > 0 { delivered.increment(by: count) }
        for continuation in dropped { continuation.finish() }
        if !dropped.isEmpty { noteWatchers() }
    }

    /// The last entry id of each feed ("0-0" for an empty or missing one).
    private func feedEnds() async throws(Refusal) -> [String] {
        do {
            let replies = try await queries.execute(feeds.map { RedisCommand("XREVRANGE", $0, "+", "-", "COUNT", "1") })
            return replies.map { reply in reply.array?.first?.array?.first?.string ?? "0-0" }
        } catch {
            throw .unavailable(error.message)
        }
    }

    /// What the feeds hold after `from` up to `to`, for the watcher; `gone` when some of it was
    /// trimmed away (Redis's `max-deleted-entry-id` is past `from`) or it is too much.
    private func catchUp(from: FeedPosition, to: FeedPosition, filter: ListQuery) async throws(Refusal) -> [FeedChange] {
        var changes: [FeedChange] = []
        do {
            let infos = try await queries.execute(feeds.map { RedisCommand("XINFO", "STREAM", $0) })
            for (shard, info) in infos.enumerated() {
                guard !StreamEntry.compare(to.ids[shard], from.ids[shard]), from.ids[shard] != to.ids[shard] else { continue }
                // Trimming (MAXLEN) removed entries before the first one it kept; Redis 7.0 moves
                // `max-deleted-entry-id` only for XDEL, so both tell of a gap.
                let deleted = Self.field("max-deleted-entry-id", of: info) ?? "0-0"
                let trimmed =
                    (Self.field("entries-added", of: info).flatMap { Int($0) } ?? 0) > (Self.field("length", of: info).flatMap { Int($0) } ?? 0)
                let first = Self.field("recorded-first-entry-id", of: info) ?? "0-0"
                if StreamEntry.compare(from.ids[shard], deleted) || (trimmed && StreamEntry.compare(from.ids[shard], first)) {
                    throw Refusal.gone("the change feed no longer holds what followed \(from); list again")
                }
                let reply = try await queries.execute(
                    RedisCommand("XRANGE", feeds[shard], "(" + from.ids[shard], to.ids[shard], "COUNT", String(Self.backlogLimit + 1))
                )
                let read = FeedChange.list(reply, shard: shard)
                guard read.count <= Self.backlogLimit, changes.count + read.count <= Self.backlogLimit else {
                    throw Refusal.gone("more than \(Self.backlogLimit) changes followed \(from); list again")
                }
                changes += read
            }
            try await lookUpProperties(&changes)
        } catch let refusal as Refusal {
            throw refusal
        } catch let error as RedisError {
            throw .unavailable(error.message)
        } catch {
            throw .unavailable("\(error)")
        }
        return changes.filter { filter.admits($0) }
    }
}

extension ChangeFeedHub {
    /// A field of an `XINFO STREAM` reply (pairs whose values may be arrays, such as `first-entry`).
    fileprivate static func field(_ name: String, of info: RedisReply) -> String? {
        guard let items = info.array else { return nil }
        for k in stride(from: 0, to: items.count - 1, by: 2) where items[k].string == name {
            return items[k + 1].string ?? items[k + 1].int.map { String($0) }
        }
        return nil
    }
}

/// What a watcher receives besides its backlog.
public enum WatchDelivery: Sendable {
    case change(FeedChange)
    /// Nothing to send for a while: a comment keeps proxies from closing the connection.
    case heartbeat
}

/// Why a watch's live stream ended, when the hub ended it.
public final class WatchEnding: Sendable {
    public enum Reason: Sendable {
        /// The watcher fell behind: it must list again.
        case behind
        /// The bridge is stopping.
        case shutdown
    }

    private let reason = Mutex<Reason?>(nil)

    init() {}

    func set(_ value: Reason) { reason.withLock { $0 = $0 ?? value } }

    public var value: Reason? { reason.withLock { $0 } }
}
