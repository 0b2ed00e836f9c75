//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// The shape of the Redis deployment a configuration reaches, which picks its transport once.
public enum RedisTopology: Sendable, Hashable {
    /// One server (and its replicas, which the bridge never writes to).
    case node(RedisConfiguration.Endpoint)
    /// The master that these sentinels name, followed through failovers.
    case sentinel(SentinelConfiguration)
    /// A Redis Cluster found through these seed nodes.
    case cluster(ClusterConfiguration)
}

extension RedisConfiguration {
    /// The deployment this configuration reaches.
    public var topology: RedisTopology {
        if let cluster { return .cluster(cluster) }
        if let sentinel { return .sentinel(sentinel) }
        return .node(endpoint)
    }
}
