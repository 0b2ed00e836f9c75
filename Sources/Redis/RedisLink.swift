//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A blocking connection that is made on first use and made again after it breaks.
///
/// For code that already runs on a thread of its own (an actor on a ``ThreadExecutor``): every
/// call blocks, and the link must be used from one thread at a time. A failure is thrown to the
/// caller, who decides whether and when to retry; the next call connects again.
public final class RedisLink {
    public let configuration: RedisConfiguration
    private var connection: RedisConnection?
    /// With Sentinel: where the master is, shared by the process's links.
    private let router: SentinelRouter?
    /// The router's generation when the connection was made.
    private var connectionGeneration: UInt64 = 0
    /// With Redis Cluster: every command goes through it (`connection` is then only for Pub/Sub).
    public let cluster: ClusterLink?

    public init(configuration: RedisConfiguration) {
        self.configuration = configuration
        self.router = configuration.sentinel.map(SentinelRouter.shared(for:))
        self.cluster = configuration.cluster.map { settings in
            let link = ClusterLink(seeds: settings.seeds, configuration: configuration)
            link.markerPrefix = settings.markerPrefix
            return link
        }
    }

    /// Whether a working connection is open now.
    public var isConnected: Bool {
        if let cluster { return cluster.slotMap != nil && !cluster.connectedNodes.isEmpty }
        guard let connection else { return false }
        return !connection.isBroken
    }

    /// Opens the connection if it is not open.
    public func connect() throws(RedisError) {
        if let cluster {
            if cluster.slotMap == nil { try cluster.refresh() }
            return
        }
        _ = try open()
    }

    /// Sends the commands in one round trip and returns one reply per command.
    public func execute(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        if let cluster { return try cluster.execute(RedisPipeline(commands)).all }
        let connection = try open()
        do {
            defer { noteRoleChange(connection) }
            return try connection.execute(commands)
        } catch {
            dropIfBroken(connection)
            throw error
        }
    }

    /// Sends a pipeline in one round trip and returns one reply per command.
    public func execute(_ pipeline: RedisPipeline) throws(RedisError) -> RedisReplies {
        if let cluster { return try cluster.execute(pipeline) }
        let connection = try open()
        do {
            defer { noteRoleChange(connection) }
            return try connection.execute(pipeline)
        } catch {
            dropIfBroken(connection)
            throw error
        }
    }

    /// Sends one command; a server error is thrown as ``RedisError``.
    @discardableResult
    public func execute(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        try value(of: command).reply
    }

    /// Sends one command and returns its reply as a view (see ``RedisReplies``); a server error
    /// is thrown as ``RedisError``.
    public func value(of command: RedisCommand) throws(RedisError) -> RedisValue {
        let reply = try execute(RedisPipeline([command]))[0]
        if let message = reply.errorMessage { throw RedisError(code: .serverError, message: message) }
        return reply
    }

    /// Sends the commands in one round trip, keeping only the errors (with the positions of the
    /// commands they answer): for commands whose successful answers do not matter.
    public func executeForErrors(_ pipeline: RedisPipeline) throws(RedisError) -> [(index: Int, message: String)] {
        if let cluster { return try cluster.executeForErrors(pipeline) }
        let connection = try open()
        do {
            defer { noteRoleChange(connection) }
            return try connection.executeForErrors(pipeline)
        } catch {
            dropIfBroken(connection)
            throw error
        }
    }

    /// Sends commands whose successful answers do not matter without waiting for their replies
    /// (see ``RedisConnection/sendDeferred(_:)``). Should the connection break before they are
    /// read, whether Redis ran them is unknown.
    public func sendDeferred(_ pipeline: RedisPipeline) throws(RedisError) {
        if let cluster { return try cluster.sendDeferred(pipeline) }
        let connection = try open()
        do {
            try connection.sendDeferred(pipeline)
        } catch {
            dropIfBroken(connection)
            throw error
        }
    }

    /// Waits until Redis has answered every deferred command; without a connection there is nothing to wait for.
    public func settle() throws(RedisError) {
        guard cluster == nil, let connection, !connection.isBroken else { return }
        do {
            defer { noteRoleChange(connection) }
            try connection.settle()
        } catch {
            dropIfBroken(connection)
            throw error
        }
    }

    /// The server's errors in reply to deferred commands read so far, forgotten once taken.
    public func takeDeferredErrors() -> [String] {
        if let cluster { return cluster.takeDeferredErrors() }
        return connection?.takeDeferredErrors() ?? []
    }

    /// Subscribes to Pub/Sub channels; the connection then only takes ``nextMessage()``. With
    /// `sharded`, to shard channels (`SSUBSCRIBE`), which must then share one slot: on a cluster
    /// the subscription is made on that slot's master.
    public func subscribe(_ channels: [String], sharded: Bool = false) throws(RedisError) {
        if let cluster {
            connection = try cluster.dedicatedConnection(slot: sharded ? channels.first.map(HashSlot.of) : nil)
        }
        let connection = try open()
        do {
            try connection.send([RedisCommand(sharded ? "SSUBSCRIBE" : "SUBSCRIBE", arguments: channels)])
            for _ in channels { _ = try connection.readReply().get() }
        } catch {
            self.connection = nil
            throw error
        }
    }

    /// Waits (up to the command timeout) for the next Pub/Sub message: `(channel, payload)`.
    public func nextMessage() throws(RedisError) -> (channel: String, payload: [UInt8]) {
        let connection = try open()
        while true {
            let reply: RedisReply
            do {
                reply = try connection.readReply()
            } catch {
                self.connection = nil
                throw error
            }
            guard case .array(let parts) = reply, parts.count == 3 else { continue }
            if parts[0].string == "message" || parts[0].string == "smessage", let channel = parts[1].string, let payload = parts[2].bytes {
                return (channel, payload)
            }
            if parts[0].string == "sunsubscribe" {
                // The channel's slot moved to another node: subscribe again there.
                self.connection = nil
                throw RedisError(code: .connectionLost, message: "the shard channel \(parts[1].string ?? "") moved to another node")
            }
        }
    }

    /// Closes the connection; the next command opens a new one.
    public func disconnect() {
        connection = nil
        cluster?.disconnect()
    }

    private func dropIfBroken(_ failed: RedisConnection) {
        guard failed.isBroken, connection === failed else { return }
        connection = nil
        // The master may be gone: ask the sentinels again.
        router?.invalidate(generation: connectionGeneration)
    }

    /// A reply said the node is no longer the master: find it again before the next command.
    private func noteRoleChange(_ used: RedisConnection) {
        guard used.takeRoleChange(), let router, connection === used else { return }
        connection = nil
        router.invalidate(generation: connectionGeneration)
    }

    private func open() throws(RedisError) -> RedisConnection {
        if cluster != nil {
            // Only a subscription holds a connection of its own on a cluster.
            guard let connection, !connection.isBroken else {
                throw RedisError(code: .connectionLost, message: "the subscription's connection is gone; subscribe again")
            }
            return connection
        }
        if let connection, !connection.isBroken {
            guard let router, router.generation != connectionGeneration else { return connection }
        }
        connection = nil
        guard let router else {
            let fresh = try RedisConnection(configuration: configuration)
            connection = fresh
            return fresh
        }
        let (endpoint, generation) = try router.master(timeout: configuration.connectTimeout)
        var target = configuration
        target.endpoint = endpoint
        let fresh: RedisConnection
        do {
            fresh = try RedisConnection(configuration: target)
        } catch {
            router.invalidate(generation: generation)
            throw error
        }
        // Never write to a node that is not the master: an old master that comes back says it is
        // one until the sentinels tell it otherwise, so its own answer is asked, not assumed.
        let role = try? fresh.execute([RedisCommand("ROLE")])[0]
        guard case .array(let parts)? = role, parts.first?.string == "master" else {
            router.invalidate(generation: generation)
            throw RedisError(
                code: .connectionFailed,
                message: "\(target) is not the master of \(router.sentinel.masterName) (ROLE answered \(role.map { "\($0)" } ?? "nothing"))"
            )
        }
        connectionGeneration = generation
        connection = fresh
        return fresh
    }
}
