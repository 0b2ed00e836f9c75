//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A Redis Cluster: where to find it.
public struct ClusterConfiguration: Sendable, Hashable {
    /// Nodes asked for the slot map; any node of the cluster will do.
    public var seeds: [RedisConfiguration.Endpoint]

    public init(seeds: [RedisConfiguration.Endpoint]) {
        self.seeds = seeds
    }

    /// Reads `host:port[,host:port...]` (port 6379 when left out).
    public static func seeds(parsing list: String) throws(RedisError) -> [RedisConfiguration.Endpoint] {
        let seeds = try SentinelConfiguration.nodes(parsing: list, defaultPort: 6379).map {
            RedisConfiguration.Endpoint.tcp(host: $0.host, port: $0.port)
        }
        guard !seeds.isEmpty else { throw RedisError(code: .invalidConfiguration, message: "no cluster seed node given") }
        return seeds
    }
}
