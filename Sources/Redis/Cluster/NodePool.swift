//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// One connection per node, each made on first use and made again after it breaks or after a
/// loss anywhere in its group (the injected ``ConnectionLosses``): a failover, a restart or
/// `CLIENT KILL` breaks the connections of every link at once, and each link would otherwise
/// find out one node at a time, failing (and backing off) once per connection.
package final class NodePool {
    /// User, password, timeouts and TLS for every node; its endpoint is not used.
    package let configuration: RedisConfiguration
    private let losses: ConnectionLosses
    private var connections: [RedisConfiguration.Endpoint: RedisConnection] = [:]

    package init(configuration: RedisConfiguration, losses: ConnectionLosses) {
        self.configuration = configuration
        self.losses = losses
    }

    /// The nodes with a connection open now.
    package var connectedNodes: [RedisConfiguration.Endpoint] { Array(connections.keys) }

    /// The open connection to `node`, or a new one.
    package func connection(to node: RedisConfiguration.Endpoint) throws(RedisError) -> RedisConnection {
        if let open = connections[node], !open.isBroken, open.epoch == losses.epoch { return open }
        let fresh = try RedisConnection(configuration: configuration(of: node), losses: losses)
        connections[node] = fresh
        return fresh
    }

    /// A connection to `node` that the pool does not keep (for Pub/Sub).
    package func dedicatedConnection(to node: RedisConfiguration.Endpoint) throws(RedisError) -> RedisConnection {
        try RedisConnection(configuration: configuration(of: node), losses: losses)
    }

    package func drop(_ node: RedisConfiguration.Endpoint) {
        connections[node] = nil
    }

    /// Closes the connections to nodes not among `nodes` (no longer masters).
    package func keep(only nodes: Set<RedisConfiguration.Endpoint>) {
        connections = connections.filter { nodes.contains($0.key) }
    }

    package func disconnect() {
        connections.removeAll()
    }

    /// Sends each node its pipeline before reading any node's answers. A node that fails is
    /// dropped, and the first failure thrown once every other node's answers are read (so that
    /// no connection is left owing replies).
    package func roundTrip(_ work: [(node: RedisConfiguration.Endpoint, pipeline: RedisPipeline)]) throws(RedisError) -> [RedisReplies] {
        var failure: RedisError?
        var sent: [RedisConnection?] = []
        for (node, pipeline) in work {
            do {
                let connection = try connection(to: node)
                try connection.send(pipeline)
                sent.append(connection)
            } catch {
                drop(node)
                failure = failure ?? error
                sent.append(nil)
            }
        }
        var received: [RedisReplies] = []
        for (n, (node, pipeline)) in work.enumerated() {
            guard let connection = sent[n] else { continue }
            do {
                received.append(try connection.receive(pipeline.count))
            } catch {
                drop(node)
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        return received
    }

    /// The settings of a connection to one node: the pool's, at that address (errors then name
    /// the node, not the cluster). A node announced by IP address is verified as the first seed's
    /// DNS name, if it has one (see ``RedisTLSConfiguration/verifiedName(forHost:seedName:)``).
    private func configuration(of node: RedisConfiguration.Endpoint) -> RedisConfiguration {
        var target = configuration
        target.endpoint = node
        target.cluster = nil
        return target
    }
}
