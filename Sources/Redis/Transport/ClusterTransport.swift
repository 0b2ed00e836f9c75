//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// The transport to a Redis Cluster: the slot map (``ClusterTopology``), one connection per
/// master (``NodePool``), and each command sent to the master of its key's slot, following
/// `MOVED` and `ASK` (``ClusterDispatcher``).
///
/// A pipeline is cut into units (see ``ClusterRoute``) and split per node; each node gets its
/// units in one round trip, and every node is written to before any is read. `TRYAGAIN`,
/// `CLUSTERDOWN`, `LOADING` and `MASTERDOWN` (Redis ran nothing) are tried again within
/// ``retryWindow``; a lost connection is thrown to the caller, and the map is read again on the
/// next call.
package final class ClusterTransport: RedisTransport {
    /// How many redirects one command may follow before the call fails.
    package var maxRedirects = 5
    /// How long refusals that mean "nothing ran, try again" are retried within one call.
    package var retryWindow: Duration = .seconds(2)
    package private(set) var topology: ClusterTopology
    private let pool: NodePool
    private var deferredErrors: [String] = []
    /// The replies of the last ``send(_:)``, until ``receive(_:)`` takes them.
    private var held: RedisReplies?
    /// The nodes written to since they were last taken (see ``takeNodesWritten()``).
    private var written: [RedisConfiguration.Endpoint] = []

    package init(seeds: [RedisConfiguration.Endpoint], configuration: RedisConfiguration, losses: ConnectionLosses) {
        var settings = configuration
        // Nodes are announced by IP address: verified as the DNS name a seed was given by, if any.
        if settings.tls != nil, settings.tls?.seedName == nil {
            settings.tls?.seedName = seeds.lazy.map(ClusterDispatcher.host(of:)).first { !RedisTLSConfiguration.isIPAddress($0) }
        }
        self.topology = ClusterTopology(seeds: seeds)
        self.pool = NodePool(configuration: settings, losses: losses)
    }

    package var slotMap: ClusterSlotMap? { topology.slotMap }

    /// The masters the transport has connections to now.
    package var connectedNodes: [RedisConfiguration.Endpoint] { pool.connectedNodes }

    package var isConnected: Bool { topology.slotMap != nil && !pool.connectedNodes.isEmpty }

    package var routesBySlot: Bool { true }

    package func connect() throws(RedisError) {
        if topology.slotMap == nil { try refresh() }
    }

    /// Reads the slot map again from the first node that answers.
    package func refresh() throws(RedisError) {
        var failures: [String] = []
        for node in topology.candidates {
            do throws(RedisError) {
                let reply = try pool.connection(to: node).execute([RedisCommand("CLUSTER", "SLOTS")])[0].get()
                try topology.accept(try ClusterSlotMap(parsingSlots: reply, fallbackHost: ClusterDispatcher.host(of: node)))
                // Connections to nodes that no longer serve slots are closed.
                pool.keep(only: Set(topology.slotMap?.masters ?? []))
                return
            } catch {
                pool.drop(node)
                failures.append("\(RedisConfiguration.describe(node)): \(error.message)")
            }
        }
        topology.markStale()
        throw RedisError(code: .connectionFailed, message: "no cluster node gave its slots: \(failures.joined(separator: "; "))")
    }

    /// Sends each command to the master of `slot`, one reply per command in order.
    package func execute(_ commands: [(command: RedisCommand, slot: Int)]) throws(RedisError) -> [RedisReply] {
        let pipeline = RedisPipeline(commands.map(\.command))
        let units = commands.indices.map { ClusterRoute.Unit(commands: $0..<($0 + 1), route: .slot(commands[$0].slot)) }
        return try run(pipeline, units: units).all
    }

    package func execute(_ pipeline: RedisPipeline) throws(RedisError) -> RedisReplies {
        try run(pipeline, units: ClusterRoute.units(of: pipeline))
    }

    package func executeForErrors(_ pipeline: RedisPipeline) throws(RedisError) -> [(index: Int, message: String)] {
        let replies = try execute(pipeline)
        var errors: [(index: Int, message: String)] = []
        for k in 0..<replies.count {
            if let message = Self.firstError(in: replies[k]) { errors.append((k, message)) }
        }
        return errors
    }

    /// Unlike one node's, it waits: a redirect must be followed now.
    package func sendDeferred(_ pipeline: RedisPipeline) throws(RedisError) {
        for error in try executeForErrors(pipeline) { deferredErrors.append(error.message) }
    }

    /// Nothing is owed: ``sendDeferred(_:)`` waited.
    package func settle() throws(RedisError) {}

    /// Unlike one node's, it waits (a redirect must be followed now): ``receive(_:)`` hands over
    /// the replies it kept.
    package func send(_ pipeline: RedisPipeline) throws(RedisError) {
        held = nil
        held = try execute(pipeline)
    }

    package func receive(_ count: Int) throws(RedisError) -> RedisReplies {
        guard let replies = held, replies.count == count else {
            throw RedisError(code: .unexpectedReply, message: "no replies were kept for \(count) commands")
        }
        held = nil
        return replies
    }

    package func takeDeferredErrors() -> [String] {
        defer { deferredErrors = [] }
        return deferredErrors
    }

    package func takeNodesWritten() -> [RedisNode] {
        defer { written = [] }
        return written.map(topology.node)
    }

    package func execute(onEach work: [(node: RedisNode, pipeline: RedisPipeline)]) throws(RedisError) -> [RedisReplies] {
        do {
            return try pool.roundTrip(work.map { ($0.node.endpoint, $0.pipeline) })
        } catch {
            topology.markStale()
            throw error
        }
    }

    package func dedicatedConnection(slot: Int?) throws(RedisError) -> RedisConnection {
        if topology.slotMap == nil { try refresh() }
        guard let node = slot.flatMap({ topology.slotMap?.master(of: $0) }) ?? topology.slotMap?.masters.first else {
            throw RedisError(code: .serverError, message: "CLUSTERDOWN no master serves slot \(slot ?? -1)")
        }
        return try pool.dedicatedConnection(to: node)
    }

    package func disconnect() {
        pool.disconnect()
    }

    // MARK: - The loop

    private func run(_ pipeline: RedisPipeline, units: [ClusterRoute.Unit]) throws(RedisError) -> RedisReplies {
        if topology.needsRefresh() { try refresh() }
        var dispatcher = ClusterDispatcher(pipeline: pipeline, units: units)
        // Scripts first, on every master: what follows may run them.
        for unit in units where unit.route == .everyMaster {
            try runOnEveryMaster(pipeline, unit, into: &dispatcher)
        }
        var pause = Duration.milliseconds(10)
        let deadline = ContinuousClock.now + retryWindow
        // Bounded by the redirect limit and the retry window.
        while !dispatcher.isDone {
            guard let map = topology.slotMap else { throw RedisError(code: .serverError, message: "CLUSTERDOWN no slot map") }
            let round = try dispatcher.plan(with: map)
            let received: [RedisReplies]
            do {
                received = try pool.roundTrip(dispatcher.pipelines(for: round))
            } catch {
                topology.markStale()
                throw error
            }
            for node in round.order where !written.contains(node) { written.append(node) }
            let outcome = dispatcher.absorb(received, of: round)
            if dispatcher.isDone { break }
            if dispatcher.redirects > maxRedirects * max(1, units.count) || (outcome.retry && ContinuousClock.now + pause > deadline) {
                // Give up: the answers stand as the nodes gave them.
                break
            }
            for move in outcome.moved { topology.move(slot: move.slot, to: move.master) }
            if !outcome.moved.isEmpty { try? refresh() }
            if outcome.retry {
                sleepThisThread(for: pause)
                pause = min(pause * 2, .milliseconds(200))
            }
        }
        return dispatcher.replies
    }

    private func runOnEveryMaster(_ pipeline: RedisPipeline, _ unit: ClusterRoute.Unit, into dispatcher: inout ClusterDispatcher) throws(RedisError) {
        let masters = topology.slotMap?.masters ?? []
        var sub = RedisPipeline()
        for c in unit.commands { sub.append(command: c, of: pipeline) }
        let received = try execute(onEach: masters.map { (RedisNode(endpoint: $0), sub) })
        if received.isEmpty { throw RedisError(code: .serverError, message: "CLUSTERDOWN the cluster has no master") }
        for (k, c) in unit.commands.enumerated() {
            // The first error any master gave, else the first master's answer.
            let all = received.map { $0[k] }
            dispatcher.answer(c, with: all.first { $0.errorMessage != nil } ?? all[0])
        }
    }

    private static func firstError(in value: RedisValue) -> String? {
        if let message = value.errorMessage { return message }
        for element in value.elements {
            if let message = firstError(in: element) { return message }
        }
        return nil
    }
}
