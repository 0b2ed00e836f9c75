//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A blocking client of a Redis Cluster: the slot map (`CLUSTER SLOTS`), one connection per
/// master, and each command sent to the master of its key's slot, following `MOVED` and `ASK`.
///
/// Like ``RedisLink``, for code on a thread of its own, one call at a time. A pipeline is cut into
/// units (see ``ClusterRoute``) and split per node; each node gets its units in one round trip,
/// every node is written to before any is read, and units for one node keep their order, as do
/// those of one slot when a redirect sends them on: one task's commands never overtake each
/// other. `TRYAGAIN`, `CLUSTERDOWN`, `LOADING` and `MASTERDOWN` (Redis ran nothing) are tried
/// again within ``retryWindow``; a lost connection is thrown to the caller, and the map is read
/// again on the next call.
public final class ClusterLink {
    /// A command and the slot of the key it works on.
    public struct Routed: Sendable {
        public var command: RedisCommand
        public var slot: Int

        public init(_ command: RedisCommand, slot: Int) {
            self.command = command
            self.slot = slot
        }

        /// A command routed by its key.
        public init(_ command: RedisCommand, key: String) {
            self.init(command, slot: HashSlot.of(key))
        }
    }

    public let seeds: [RedisConfiguration.Endpoint]
    /// User, password and timeouts for every node; its endpoint is not used.
    public let configuration: RedisConfiguration
    /// How many redirects one command may follow before the call fails.
    public var maxRedirects = 5
    /// How long refusals that mean "nothing ran, try again" are retried within one call.
    public var retryWindow: Duration = .seconds(2)
    /// How often the slot map is read again even when nothing said it changed.
    public var refreshInterval: Duration = .seconds(10)
    /// The key (before its hash tag) that ``ClusterRoute/wait`` writes on each node before `WAIT`.
    public var markerPrefix = "taskstatus:replication"
    public private(set) var slotMap: ClusterSlotMap?
    private var refreshed = ContinuousClock.now
    /// The map may be out of date (a node failed or said it is not a master): read it again
    /// before the next call, asking the masters it names first. A seed first could be an old
    /// master just restarted, which names itself until the cluster tells it otherwise.
    private var stale = false
    private var connections: [RedisConfiguration.Endpoint: (connection: RedisConnection, epoch: UInt64)] = [:]
    /// Lost connections anywhere in the process: a failover, a restart or `CLIENT KILL` breaks
    /// the connections of every link at once, and each link would otherwise find out one node at
    /// a time, failing (and backing off) once per connection. A link opens afresh the
    /// connections it made before the last loss.
    private static let losses = Atomic<UInt64>(0)
    private var deferredErrors: [String] = []
    /// The nodes written to since the last `WAIT`, which the next one covers.
    private var written: [RedisConfiguration.Endpoint] = []

    public init(seeds: [RedisConfiguration.Endpoint], configuration: RedisConfiguration) {
        self.seeds = seeds
        self.configuration = configuration
    }

    /// Reads the slot map again from the first node that answers: the known masters, then the seeds.
    public func refresh() throws(RedisError) {
        var failures: [String] = []
        var asked: Set<RedisConfiguration.Endpoint> = []
        for node in (slotMap?.masters ?? []) + seeds where asked.insert(node).inserted {
            do throws(RedisError) {
                let reply = try connection(to: node).execute([RedisCommand("CLUSTER", "SLOTS")])[0].get()
                let map = try ClusterSlotMap(parsingSlots: reply, fallbackHost: Self.host(of: node))
                // A node that lost its view (just restarted, not yet met the others) serves nothing.
                guard !map.ranges.isEmpty else { throw RedisError(code: .serverError, message: "CLUSTERDOWN it serves no slots") }
                slotMap = map
                refreshed = ContinuousClock.now
                stale = false
                // Connections to nodes that no longer serve slots are closed.
                let masters = Set(map.masters)
                connections = connections.filter { masters.contains($0.key) }
                return
            } catch {
                drop(node)
                failures.append("\(node): \(error.message)")
            }
        }
        // The old map stays, marked stale: its masters are asked first next time.
        stale = true
        throw RedisError(code: .connectionFailed, message: "no cluster node gave its slots: \(failures.joined(separator: "; "))")
    }

    /// Sends the commands, each to its slot's master, and returns one reply per command in the
    /// order given.
    public func execute(_ commands: [Routed]) throws(RedisError) -> [RedisReply] {
        let pipeline = RedisPipeline(commands.map(\.command))
        let units = commands.indices.map { ClusterRoute.Unit(commands: $0..<($0 + 1), route: .slot(commands[$0].slot)) }
        return try run(pipeline, units: units).all
    }

    /// Sends a pipeline, each command (or `MULTI` block) to the master of its key's slot (see
    /// ``ClusterRoute``), and returns one reply per command in order.
    public func execute(_ pipeline: RedisPipeline) throws(RedisError) -> RedisReplies {
        try run(pipeline, units: ClusterRoute.units(of: pipeline))
    }

    /// ``execute(_:)-(RedisPipeline)`` keeping only the errors, found anywhere in a reply (a
    /// transaction's `EXEC` holds each command's).
    public func executeForErrors(_ pipeline: RedisPipeline) throws(RedisError) -> [(index: Int, message: String)] {
        let replies = try execute(pipeline)
        var errors: [(index: Int, message: String)] = []
        for k in 0..<replies.count {
            if let message = Self.firstError(in: replies[k]) { errors.append((k, message)) }
        }
        return errors
    }

    /// Runs a pipeline whose successful answers do not matter and keeps its errors for
    /// ``takeDeferredErrors()``. Unlike one node's, it waits: a redirect must be followed now.
    public func sendDeferred(_ pipeline: RedisPipeline) throws(RedisError) {
        for error in try executeForErrors(pipeline) { deferredErrors.append(error.message) }
    }

    /// The errors of ``sendDeferred(_:)`` so far, forgotten once taken.
    public func takeDeferredErrors() -> [String] {
        defer { deferredErrors = [] }
        return deferredErrors
    }

    /// A connection of its own to the master of `slot` (any master when nil), for Pub/Sub.
    public func dedicatedConnection(slot: Int?) throws(RedisError) -> RedisConnection {
        if slotMap == nil { try refresh() }
        guard let node = slot.flatMap({ slotMap?.master(of: $0) }) ?? slotMap?.masters.first else {
            throw RedisError(code: .serverError, message: "CLUSTERDOWN no master serves slot \(slot ?? -1)")
        }
        return try RedisConnection(configuration: nodeConfiguration(node))
    }

    /// Closes every connection; the next call opens them again.
    public func disconnect() {
        connections.removeAll()
    }

    /// The masters the link has connections to now.
    public var connectedNodes: [RedisConfiguration.Endpoint] { Array(connections.keys) }

    // MARK: - The engine

    private func run(_ pipeline: RedisPipeline, units: [ClusterRoute.Unit]) throws(RedisError) -> RedisReplies {
        if slotMap == nil || stale || ContinuousClock.now - refreshed > refreshInterval { try refresh() }
        var answers = [RedisValue?](repeating: nil, count: pipeline.count)
        // Scripts first, on every master: what follows may run them.
        for unit in units where unit.route == .everyMaster {
            try runOnEveryMaster(pipeline, unit, into: &answers)
        }
        var pending = units.indices.filter { units[$0].route != .everyMaster && units[$0].route != .wait }
        var asking: [Int: RedisConfiguration.Endpoint] = [:]
        var nodeOf: [Int: RedisConfiguration.Endpoint] = [:]
        var redirects = 0
        var pause = Duration.milliseconds(10)
        let deadline = ContinuousClock.now + retryWindow
        while !pending.isEmpty {
            // Each unit's node; a keyless one goes with the unit before it.
            var order: [RedisConfiguration.Endpoint] = []
            var groups: [RedisConfiguration.Endpoint: [Int]] = [:]
            var previous: RedisConfiguration.Endpoint?
            for u in pending {
                var target = asking[u]
                if target == nil {
                    switch units[u].route {
                    case .slot(let slot):
                        target = slotMap?.master(of: slot)
                        if target == nil { throw RedisError(code: .serverError, message: "CLUSTERDOWN no master serves slot \(slot)") }
                    default:
                        target = (u > 0 ? nodeOf[u - 1] : nil) ?? previous ?? slotMap?.masters.first
                    }
                }
                guard let target else { throw RedisError(code: .serverError, message: "CLUSTERDOWN the cluster has no master") }
                nodeOf[u] = target
                previous = target
                if groups[target] == nil { order.append(target) }
                groups[target, default: []].append(u)
            }
            let received = try roundTrip(
                order.map { node in
                    var sub = RedisPipeline()
                    for u in groups[node]! {
                        if asking[u] != nil { sub.begin("ASKING") }
                        for c in units[u].commands { sub.append(command: c, of: pipeline) }
                    }
                    return (node, sub)
                }
            )
            var again: [Int] = []
            var moved = false
            var retry = false
            for (n, node) in order.enumerated() {
                if !written.contains(node) { written.append(node) }
                var k = 0
                for u in groups[node]! {
                    if asking[u] != nil { k += 1 }
                    asking[u] = nil
                    var verdict: Verdict = .done
                    for c in units[u].commands {
                        answers[c] = received[n][k]
                        k += 1
                        if verdict == .done { verdict = Self.verdict(answers[c]!, fallbackHost: Self.host(of: node)) }
                    }
                    switch verdict {
                    case .done:
                        continue
                    case .redirect(.moved(let slot, let master)):
                        slotMap?.move(slot: slot, to: master)
                        moved = true
                        redirects += 1
                    case .redirect(.ask(_, let target)):
                        asking[u] = target
                        redirects += 1
                    case .retry:
                        // Nothing ran (a migration, a failover): the same node again, after a
                        // pause; an asked unit goes back to the slot's owner, which redirects it.
                        retry = true
                    }
                    again.append(u)
                }
            }
            if again.isEmpty { break }
            if redirects > maxRedirects * max(1, units.count) || (retry && ContinuousClock.now + pause > deadline) {
                // Give up: the answers stand as the nodes gave them.
                break
            }
            if moved { try? refresh() }
            if retry {
                Self.sleep(pause)
                pause = min(pause * 2, .milliseconds(200))
            }
            pending = again.sorted()
        }
        for unit in units where unit.route == .wait {
            try runWait(pipeline, unit, on: written, into: &answers)
            written = []
        }
        return RedisReplies(assembling: answers.map { $0! })
    }

    /// Sends each node its commands before reading any node's answers. A node that fails is
    /// dropped (and the map read again next time) once every other node's answers are read.
    private func roundTrip(_ work: [(RedisConfiguration.Endpoint, RedisPipeline)]) throws(RedisError) -> [RedisReplies] {
        var failure: RedisError?
        var sent: [RedisConnection?] = []
        for (node, sub) in work {
            do {
                let connection = try connection(to: node)
                try connection.send(sub)
                sent.append(connection)
            } catch {
                fail(node, error, &failure)
                sent.append(nil)
            }
        }
        var received: [RedisReplies] = []
        for (n, (node, sub)) in work.enumerated() {
            guard let connection = sent[n] else { continue }
            do {
                received.append(try connection.receive(sub.count))
            } catch {
                fail(node, error, &failure)
            }
        }
        if let failure { throw failure }
        return received
    }

    private func fail(_ node: RedisConfiguration.Endpoint, _ error: RedisError, _ first: inout RedisError?) {
        drop(node)
        stale = true
        if error.code == .connectionLost || error.code == .connectionFailed { Self.losses.add(1, ordering: .relaxed) }
        if first == nil { first = error }
    }

    private func runOnEveryMaster(_ pipeline: RedisPipeline, _ unit: ClusterRoute.Unit, into answers: inout [RedisValue?]) throws(RedisError) {
        let masters = slotMap?.masters ?? []
        var sub = RedisPipeline()
        for c in unit.commands { sub.append(command: c, of: pipeline) }
        let received = try roundTrip(masters.map { ($0, sub) })
        for (k, c) in unit.commands.enumerated() {
            // The first error any master gave, else the first master's answer.
            let all = received.map { $0[k] }
            answers[c] = all.first { $0.errorMessage != nil } ?? all.first
        }
        if received.isEmpty { throw RedisError(code: .serverError, message: "CLUSTERDOWN the cluster has no master") }
    }

    /// `WAIT` on every node written to since the last, each after a write of its own there (so that it covers
    /// what the call only read on that node): the answer is the least count, or the first error.
    private func runWait(
        _ pipeline: RedisPipeline,
        _ unit: ClusterRoute.Unit,
        on written: [RedisConfiguration.Endpoint],
        into answers: inout [RedisValue?]
    ) throws(RedisError) {
        let nodes = written.isEmpty ? Array((slotMap?.masters ?? []).prefix(1)) : written
        var work: [(RedisConfiguration.Endpoint, RedisPipeline)] = []
        for node in nodes {
            var sub = RedisPipeline()
            if let slot = slotMap?.ranges.first(where: { $0.master == node })?.slots.lowerBound {
                sub.begin("SET")
                sub.add(joining: markerPrefix, "{", HashSlot.tag(forSlot: slot), "}")
                sub.add("1")
            }
            for c in unit.commands { sub.append(command: c, of: pipeline) }
            work.append((node, sub))
        }
        let received = try roundTrip(work)
        for (k, c) in unit.commands.enumerated() {
            // A node that no longer serves slots got no marker write: each node's answers are its last.
            var all = received.map { $0[$0.count - unit.commands.count + k] }
            for (n, answer) in all.enumerated() where answer.errorMessage?.contains("replica") == true {
                // Written to before a failover made it a replica: nothing it took is confirmed,
                // and the map is old. Said as what it is, a shortfall of replicas (tried again
                // soon, on the new master), not as the command's error.
                stale = true
                let text =
                    "-NOREPLICAS \(RedisConfiguration.describe(nodes[n])) is a replica now (a failover): what was written there is confirmed again on its new master\r\n"
                if let replaced = try? RedisReplies(parsing: Array(text.utf8)) { all[n] = replaced[0] }
            }
            answers[c] = all.first { $0.errorMessage != nil } ?? all.min { ($0.int ?? 0) < ($1.int ?? 0) }
        }
        if received.isEmpty { throw RedisError(code: .serverError, message: "CLUSTERDOWN the cluster has no master") }
    }

    private enum Verdict: Equatable {
        case done
        case redirect(ClusterRedirect)
        case retry
    }

    /// Whether an answer sends its unit elsewhere, asks for it again later, or stands. Inside a
    /// transaction the queued answers say it (`EXEC` then only says `EXECABORT`).
    private static func verdict(_ reply: RedisValue, fallbackHost: String) -> Verdict {
        guard let message = reply.errorMessage else { return .done }
        if let redirect = ClusterRedirect(errorMessage: message, fallbackHost: fallbackHost) { return .redirect(redirect) }
        for prefix in ["TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN"] where message.hasPrefix(prefix) { return .retry }
        return .done
    }

    private static func firstError(in value: RedisValue) -> String? {
        if let message = value.errorMessage { return message }
        for element in value.elements {
            if let message = firstError(in: element) { return message }
        }
        return nil
    }

    private static func sleep(_ duration: Duration) {
        usleep(UInt32(max(1, duration.components.attoseconds / 1_000_000_000_000 + duration.components.seconds * 1_000_000)))
    }

    private func connection(to node: RedisConfiguration.Endpoint) throws(RedisError) -> RedisConnection {
        let epoch = Self.losses.load(ordering: .relaxed)
        if let open = connections[node], !open.connection.isBroken, open.epoch == epoch { return open.connection }
        let fresh = try RedisConnection(configuration: nodeConfiguration(node))
        connections[node] = (fresh, epoch)
        return fresh
    }

    /// The settings of a connection to one node: the link's, at that address (errors then name
    /// the node, not the cluster).
    private func nodeConfiguration(_ node: RedisConfiguration.Endpoint) -> RedisConfiguration {
        var target = configuration
        target.endpoint = node
        target.cluster = nil
        return target
    }

    private func drop(_ node: RedisConfiguration.Endpoint) {
        connections[node] = nil
    }

    static func host(of node: RedisConfiguration.Endpoint) -> String {
        if case .tcp(let host, _) = node { return host }
        return "127.0.0.1"
    }
}
