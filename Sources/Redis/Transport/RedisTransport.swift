//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// How a link's commands reach Redis: one node (followed through Sentinel failovers) or every
/// master of a cluster, over plain TCP or TLS alike. Chosen once, from the ``RedisTopology``.
///
/// Blocking, and for one thread at a time, like the connections beneath it. A failure is thrown
/// to the caller, who decides whether and when to retry; the next call connects again.
package protocol RedisTransport: AnyObject {
    /// Whether working connections are open now.
    var isConnected: Bool { get }
    /// Whether commands are routed by key slot (a cluster): commands in different slots cannot
    /// share a transaction.
    var routesBySlot: Bool { get }

    /// Opens what the first command needs, if it is not open.
    func connect() throws(RedisError)

    /// Sends a pipeline (each command to its node) and returns one reply per command, in order.
    func execute(_ pipeline: RedisPipeline) throws(RedisError) -> RedisReplies

    /// ``execute(_:)`` keeping only the errors, found anywhere in a reply, with the positions of
    /// the commands they answer.
    func executeForErrors(_ pipeline: RedisPipeline) throws(RedisError) -> [(index: Int, message: String)]

    /// Sends commands whose successful answers do not matter without waiting for them where the
    /// transport can; their errors are kept for ``takeDeferredErrors()``.
    func sendDeferred(_ pipeline: RedisPipeline) throws(RedisError)

    /// Waits until Redis has answered every deferred command.
    func settle() throws(RedisError)

    /// The first half of a round trip: sends a pipeline whose replies ``receive(_:)`` reads
    /// later, so that the caller can wait on something else meanwhile. Nothing else may be sent
    /// through the transport in between.
    func send(_ pipeline: RedisPipeline) throws(RedisError)

    /// The second half: the replies to the `count` commands ``send(_:)`` sent, in order.
    func receive(_ count: Int) throws(RedisError) -> RedisReplies

    /// The server's errors in reply to deferred commands read so far, forgotten once taken.
    func takeDeferredErrors() -> [String]

    /// The nodes commands went to since the last call, forgotten once taken: those a `WAIT`
    /// must cover.
    func takeNodesWritten() -> [RedisNode]

    /// Sends each node its own pipeline, every node before any is read; one set of replies per
    /// node, in order.
    func execute(onEach work: [(node: RedisNode, pipeline: RedisPipeline)]) throws(RedisError) -> [RedisReplies]

    /// A connection of its own for Pub/Sub: to the master of `slot` on a cluster (any master
    /// when `nil`), to the node otherwise.
    func dedicatedConnection(slot: Int?) throws(RedisError) -> RedisConnection

    /// Closes every connection; the next call opens them again.
    func disconnect()
}

/// One server a transport sent commands to.
package struct RedisNode: Sendable, Hashable, CustomStringConvertible {
    package var endpoint: RedisConfiguration.Endpoint
    /// On a cluster, a slot the node serves: a key in it lands there (a hash tag from
    /// ``HashSlot/tag(forSlot:)``). `nil` on a single node.
    package var slot: Int?

    package init(endpoint: RedisConfiguration.Endpoint, slot: Int? = nil) {
        self.endpoint = endpoint
        self.slot = slot
    }

    package var description: String { RedisConfiguration.describe(endpoint) }
}

extension RedisConfiguration {
    /// The transport for this configuration's topology.
    package func makeTransport(losses: ConnectionLosses) -> any RedisTransport {
        switch topology {
        case .node, .sentinel:
            return NodeTransport(configuration: self, losses: losses)
        case .cluster(let cluster):
            return ClusterTransport(seeds: cluster.seeds, configuration: self, losses: losses)
        }
    }
}
