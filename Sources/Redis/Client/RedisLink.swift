//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A blocking link to Redis: its topology's transport for commands, and a connection of its own
/// for Pub/Sub once it subscribes.
///
/// For code that already runs on a thread of its own (an actor on a ``ThreadExecutor``): every
/// call blocks, and the link must be used from one thread at a time. A failure is thrown to the
/// caller, who decides whether and when to retry; the next call connects again.
package final class RedisLink {
    package let configuration: RedisConfiguration
    private let transport: any RedisTransport
    /// The subscription's connection, once ``subscribe(_:sharded:)`` made one.
    private var subscription: RedisConnection?

    package init(configuration: RedisConfiguration, losses: ConnectionLosses? = nil) {
        self.configuration = configuration
        self.transport = configuration.makeTransport(losses: losses ?? .shared(for: configuration))
    }

    /// Whether a working connection is open now.
    package var isConnected: Bool { transport.isConnected }

    /// Whether commands are routed by key slot (a cluster): commands in different slots cannot
    /// share a transaction.
    package var routesBySlot: Bool { transport.routesBySlot }

    /// Opens the connection if it is not open.
    package func connect() throws(RedisError) { try transport.connect() }

    /// Sends the commands in one round trip and returns one reply per command.
    package func execute(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        try transport.execute(RedisPipeline(commands)).all
    }

    /// Sends a pipeline in one round trip and returns one reply per command.
    package func execute(_ pipeline: RedisPipeline) throws(RedisError) -> RedisReplies {
        try transport.execute(pipeline)
    }

    /// Sends one command; a server error is thrown as ``RedisError``.
    @discardableResult
    package func execute(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        try value(of: command).reply
    }

    /// Sends one command and returns its reply as a view (see ``RedisReplies``); a server error
    /// is thrown as ``RedisError``.
    package func value(of command: RedisCommand) throws(RedisError) -> RedisValue {
        let reply = try execute(RedisPipeline([command]))[0]
        if let message = reply.errorMessage { throw RedisError(code: .serverError, message: message) }
        return reply
    }

    /// Sends the commands in one round trip, keeping only the errors (with the positions of the
    /// commands they answer): for commands whose successful answers do not matter.
    package func executeForErrors(_ pipeline: RedisPipeline) throws(RedisError) -> [(index: Int, message: String)] {
        try transport.executeForErrors(pipeline)
    }

    /// Sends commands whose successful answers do not matter without waiting for their replies
    /// (see ``RedisConnection/sendDeferred(_:)``). Should the connection break before they are
    /// read, whether Redis ran them is unknown.
    package func sendDeferred(_ pipeline: RedisPipeline) throws(RedisError) { try transport.sendDeferred(pipeline) }

    /// Sends a pipeline whose replies ``receive(_:)`` reads later (see
    /// ``RedisTransport/send(_:)``): nothing else may go through the link in between.
    package func send(_ pipeline: RedisPipeline) throws(RedisError) { try transport.send(pipeline) }

    /// The replies to the `count` commands of the last ``send(_:)``.
    package func receive(_ count: Int) throws(RedisError) -> RedisReplies { try transport.receive(count) }

    /// Waits until Redis has answered every deferred command; without a connection there is nothing to wait for.
    package func settle() throws(RedisError) { try transport.settle() }

    /// The server's errors in reply to deferred commands read so far, forgotten once taken.
    package func takeDeferredErrors() -> [String] { transport.takeDeferredErrors() }

    /// The nodes commands went to since the last call (see ``RedisTransport/takeNodesWritten()``).
    package func takeNodesWritten() -> [RedisNode] { transport.takeNodesWritten() }

    /// Sends each node its own pipeline, every node before any is read.
    package func execute(onEach work: [(node: RedisNode, pipeline: RedisPipeline)]) throws(RedisError) -> [RedisReplies] {
        try transport.execute(onEach: work)
    }

    /// On a cluster, the slot map read afresh; `nil` on one node.
    package func clusterSlotMap() throws(RedisError) -> ClusterSlotMap? {
        guard let cluster = transport as? ClusterTransport else { return nil }
        try cluster.refresh()
        return cluster.slotMap
    }

    /// Subscribes to Pub/Sub channels on a connection of its own; ``nextMessage()`` then reads
    /// them. With `sharded`, to shard channels (`SSUBSCRIBE`), which must then share one slot: on
    /// a cluster the subscription is made on that slot's master.
    package func subscribe(_ channels: [String], sharded: Bool = false) throws(RedisError) {
        subscription = nil
        let connection = try transport.dedicatedConnection(slot: sharded ? channels.first.map(HashSlot.of) : nil)
        try connection.send([RedisCommand(sharded ? "SSUBSCRIBE" : "SUBSCRIBE", arguments: channels)])
        for _ in channels { _ = try connection.readReply().get() }
        subscription = connection
    }

    /// Waits (up to the command timeout) for the next Pub/Sub message: `(channel, payload)`.
    package func nextMessage() throws(RedisError) -> (channel: String, payload: [UInt8]) {
        guard let connection = subscription, !connection.isBroken else {
            throw RedisError(code: .connectionLost, message: "the subscription's connection is gone; subscribe again")
        }
        // Bounded by the command timeout per read; other replies (subscribe confirmations) are skipped.
        while true {
            let reply: RedisReply
            do {
                reply = try connection.readReply()
            } catch {
                subscription = nil
                throw error
            }
            guard case .array(let parts) = reply, parts.count == 3 else { continue }
            if parts[0].string == "message" || parts[0].string == "smessage", let channel = parts[1].string, let payload = parts[2].bytes {
                return (channel, payload)
            }
            if parts[0].string == "sunsubscribe" {
                // The channel's slot moved to another node: subscribe again there.
                subscription = nil
                throw RedisError(code: .connectionLost, message: "the shard channel \(parts[1].string ?? "") moved to another node")
            }
        }
    }

    /// Closes the connections; the next command opens new ones.
    package func disconnect() {
        subscription = nil
        transport.disconnect()
    }
}
