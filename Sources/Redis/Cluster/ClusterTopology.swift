//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// What a cluster client knows of the cluster's shape, and when it must ask again: no I/O.
///
/// The slot map is read on first use, again every ``refreshInterval``, and again before the next
/// call once something said it may be out of date (a lost node, a `MOVED`, a node that no longer
/// says it is a master). The nodes asked are the masters the map names, then the seeds: a seed
/// first could be an old master just restarted, which names itself until the cluster tells it
/// otherwise.
package struct ClusterTopology: Sendable {
    package let seeds: [RedisConfiguration.Endpoint]
    /// How often the map is read again even when nothing said it changed.
    package var refreshInterval: Duration = .seconds(10)
    package private(set) var slotMap: ClusterSlotMap?
    private var refreshed: ContinuousClock.Instant = .now
    private var stale = false

    package init(seeds: [RedisConfiguration.Endpoint]) {
        self.seeds = seeds
    }

    /// Whether the map must be read before the next call.
    package func needsRefresh(at now: ContinuousClock.Instant = .now) -> Bool {
        slotMap == nil || stale || now - refreshed > refreshInterval
    }

    /// The nodes to ask for the map, in order, each once.
    package var candidates: [RedisConfiguration.Endpoint] {
        var asked: Set<RedisConfiguration.Endpoint> = []
        return ((slotMap?.masters ?? []) + seeds).filter { asked.insert($0).inserted }
    }

    /// Takes a map a node gave; one that serves no slots (a node that lost its view) is refused.
    package mutating func accept(_ map: ClusterSlotMap, at now: ContinuousClock.Instant = .now) throws(RedisError) {
        guard !map.ranges.isEmpty else { throw RedisError(code: .serverError, message: "CLUSTERDOWN it serves no slots") }
        slotMap = map
        refreshed = now
        stale = false
    }

    /// The map may be out of date; the old one stays, its masters asked first.
    package mutating func markStale() {
        stale = true
    }

    /// A `MOVED` said where a slot is now.
    package mutating func move(slot: Int, to master: RedisConfiguration.Endpoint) {
        slotMap?.move(slot: slot, to: master)
    }

    /// The node as a ``RedisNode``, with a slot it serves.
    package func node(_ endpoint: RedisConfiguration.Endpoint) -> RedisNode {
        RedisNode(endpoint: endpoint, slot: slotMap?.ranges.first { $0.master == endpoint }?.slots.lowerBound)
    }
}
