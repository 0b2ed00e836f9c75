//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// The transport to one server: a connection made on first use and made again after it breaks,
/// after any connection of its group was lost (see ``ConnectionLosses``), or, with Sentinel,
/// after the master may have changed.
package final class NodeTransport: RedisTransport {
    package let configuration: RedisConfiguration
    private let losses: ConnectionLosses
    private var connection: RedisConnection?
    /// With Sentinel: where the master is, shared by the process's links.
    private let router: SentinelRouter?
    /// The router's generation when the connection was made.
    private var connectionGeneration: UInt64 = 0
    /// Errors of deferred commands read from a connection since replaced.
    private var carriedErrors: [String] = []
    private var wrote = false
    /// The connection ``send(_:)`` wrote to, whose replies ``receive(_:)`` reads.
    private var sentOn: RedisConnection?

    package init(configuration: RedisConfiguration, losses: ConnectionLosses) {
        self.configuration = configuration
        self.losses = losses
        self.router = configuration.sentinel.map(SentinelRouter.shared(for:))
    }

    package var isConnected: Bool {
        guard let connection else { return false }
        return !connection.isBroken
    }

    package var routesBySlot: Bool { false }

    package func connect() throws(RedisError) {
        _ = try open()
    }

    package func execute(_ pipeline: RedisPipeline) throws(RedisError) -> RedisReplies {
        try use { connection throws(RedisError) in try connection.execute(pipeline) }
    }

    package func executeForErrors(_ pipeline: RedisPipeline) throws(RedisError) -> [(index: Int, message: String)] {
        try use { connection throws(RedisError) in try connection.executeForErrors(pipeline) }
    }

    /// Should the connection break before the replies are read, whether Redis ran the commands
    /// is unknown.
    package func sendDeferred(_ pipeline: RedisPipeline) throws(RedisError) {
        try use { connection throws(RedisError) in try connection.sendDeferred(pipeline) }
    }

    package func send(_ pipeline: RedisPipeline) throws(RedisError) {
        sentOn = nil
        try use { connection throws(RedisError) in
            try connection.send(pipeline)
            sentOn = connection
        }
    }

    /// Read from the connection the commands went to: should it have been replaced since, their
    /// fate is unknown.
    package func receive(_ count: Int) throws(RedisError) -> RedisReplies {
        guard let connection = sentOn else {
            throw RedisError(code: .connectionLost, message: "the connection the commands were sent on is gone")
        }
        sentOn = nil
        do {
            defer { noteRoleChange(connection) }
            return try connection.receive(count)
        } catch {
            dropIfBroken(connection)
            throw error
        }
    }

    /// Without a connection there is nothing to wait for.
    package func settle() throws(RedisError) {
        guard let connection, !connection.isBroken else { return }
        do {
            defer { noteRoleChange(connection) }
            try connection.settle()
        } catch {
            dropIfBroken(connection)
            throw error
        }
    }

    package func takeDeferredErrors() -> [String] {
        let errors = carriedErrors + (connection?.takeDeferredErrors() ?? [])
        carriedErrors = []
        return errors
    }

    package func takeNodesWritten() -> [RedisNode] {
        defer { wrote = false }
        guard wrote, let connection else { return [] }
        return [RedisNode(endpoint: connection.configuration.endpoint)]
    }

    package func execute(onEach work: [(node: RedisNode, pipeline: RedisPipeline)]) throws(RedisError) -> [RedisReplies] {
        // One node: every pipeline goes to it, in one round trip.
        var joined = RedisPipeline()
        for item in work {
            for k in 0..<item.pipeline.count { joined.append(command: k, of: item.pipeline) }
        }
        let replies = try execute(joined)
        var offset = 0
        var answers: [RedisReplies] = []
        for item in work {
            answers.append(RedisReplies(assembling: (offset..<(offset + item.pipeline.count)).map { replies[$0] }))
            offset += item.pipeline.count
        }
        return answers
    }

    package func dedicatedConnection(slot: Int?) throws(RedisError) -> RedisConnection {
        try makeConnection().connection
    }

    package func disconnect() {
        connection = nil
        sentOn = nil
    }

    private func use<T>(_ body: (RedisConnection) throws(RedisError) -> T) throws(RedisError) -> T {
        let connection = try open()
        do {
            defer { noteRoleChange(connection) }
            wrote = true
            return try body(connection)
        } catch {
            dropIfBroken(connection)
            throw error
        }
    }

    private func dropIfBroken(_ failed: RedisConnection) {
        guard failed.isBroken, connection === failed else { return }
        // Errors already read for deferred commands must outlive it (see takeDeferredErrors).
        carriedErrors += failed.takeDeferredErrors()
        connection = nil
        // The master may be gone: ask the sentinels again.
        router?.invalidate(generation: connectionGeneration)
    }

    /// A reply said the node is no longer the master: find it again before the next command.
    private func noteRoleChange(_ used: RedisConnection) {
        guard used.takeRoleChange(), let router, connection === used else { return }
        carriedErrors += used.takeDeferredErrors()
        connection = nil
        router.invalidate(generation: connectionGeneration)
    }

    private func open() throws(RedisError) -> RedisConnection {
        if let connection, !connection.isBroken {
            let current = connection.epoch == losses.epoch && (router.map { $0.generation == connectionGeneration } ?? true)
            if current { return connection }
            // Made before a loss or a failover: replaced, once what it owes is read (a deferred
            // command's error must not be lost with it).
            do {
                try connection.settle()
            } catch {
                dropIfBroken(connection)
                throw error
            }
            carriedErrors += connection.takeDeferredErrors()
        }
        connection = nil
        let (fresh, generation) = try makeConnection()
        connectionGeneration = generation
        connection = fresh
        return fresh
    }

    /// A new connection to the node, or to the master the sentinels name (checked with `ROLE`).
    private func makeConnection() throws(RedisError) -> (connection: RedisConnection, generation: UInt64) {
        guard let router else { return (try RedisConnection(configuration: configuration, losses: losses), 0) }
        // The master the router remembers may have been replaced since (no watcher runs outside
        // the bridge's service): a node that says it is not the master sends it back to the
        // sentinels once, at once.
        switch try masterConnection(router) {
        case .success(let made): return made
        case .failure: return try masterConnection(router).get()
        }
    }

    /// A connection to the master the router names; `.failure` when that node says it is not the
    /// master (the router has forgotten it by then).
    private func masterConnection(
        _ router: SentinelRouter
    ) throws(RedisError) -> Result<(connection: RedisConnection, generation: UInt64), RedisError> {
        let (endpoint, generation) = try router.master(timeout: configuration.connectTimeout)
        var target = configuration
        target.endpoint = endpoint
        // A master announced by IP address is verified as the URL's DNS name, if it has one.
        if case .tcp(let host, _) = configuration.endpoint, var tls = target.tls, tls.seedName == nil {
            tls.seedName = host
            target.tls = tls
        }
        let fresh: RedisConnection
        do {
            fresh = try RedisConnection(configuration: target, losses: losses)
        } catch {
            router.invalidate(generation: generation)
            throw error
        }
        // Never write to a node that is not the master: an old master that comes back says it is
        // one until the sentinels tell it otherwise, so its own answer is asked, not assumed.
        let role = try? fresh.execute([RedisCommand("ROLE")])[0]
        guard case .array(let parts)? = role, parts.first?.string == "master" else {
            router.invalidate(generation: generation)
            return .failure(
                RedisError(
                    code: .connectionFailed,
                    message: "\(target) is not the master of \(router.sentinel.masterName) (ROLE answered \(role.map { "\($0)" } ?? "nothing"))"
                )
            )
        }
        return .success((fresh, generation))
    }
}
