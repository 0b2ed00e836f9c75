//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Redis

/// `--min-replicas` above 0: how many replicas must confirm what a connection wrote before any of
/// it becomes visible, and the `WAIT` that asks them, written once for the commits and the dead
/// letters alike.
struct ReplicationCheck {
    let minimum: Int
    let marker: [UInt8]
    let timeoutMilliseconds: Int64
    /// With Sentinel: whether a failover is under way.
    let router: SentinelRouter?
    /// On a cluster the link writes a marker on each node before its `WAIT` (a `PUBLISH` there
    /// reaches the other nodes over the cluster bus, not the replicas).
    let onCluster: Bool

    /// `nil` when no replica needs to confirm anything.
    init?(configuration: BridgeConfiguration) {
        guard configuration.minReplicas > 0 else { return nil }
        minimum = configuration.minReplicas
        marker = Array(configuration.keys.replicationMarker.utf8)
        timeoutMilliseconds = max(1, configuration.replicaTimeout.milliseconds)
        router = configuration.redis.sentinel.map(SentinelRouter.shared(for:))
        onCluster = configuration.redis.cluster != nil
    }

    /// A write every replica receives (so that `WAIT` covers the replies this connection found
    /// stored too, written by others), then `WAIT`: its answer is the pipeline's last.
    func add(to pipeline: inout RedisPipeline) {
        if !onCluster {
            pipeline.begin("PUBLISH")
            pipeline.add(marker)
            pipeline.add("")
        }
        pipeline.begin("WAIT")
        pipeline.add(minimum)
        pipeline.add(timeoutMilliseconds)
    }

    /// Why a `WAIT` reply does not confirm `what` was written ("the commits", "the dead letter");
    /// `nil` when it does.
    func shortfall(_ reply: RedisValue, confirming what: String) -> String? {
        if let message = reply.errorMessage { return message }
        let confirmed = reply.int ?? 0
        guard confirmed >= Int64(minimum) else {
            return
                "NOREPLICAS only \(confirmed) of the \(minimum) replicas required (--min-replicas) confirmed \(what) within \(timeoutMilliseconds) ms"
        }
        // A sentinel is promoting a replica: one that confirmed may be about to follow the new
        // master and drop what this one took. Checked after WAIT: what lands after the promotion
        // began is confirmed again once the new master holds the request.
        if router?.isFailingOver == true {
            return "NOREPLICAS a Sentinel failover is under way; \(what) will be confirmed on the new master"
        }
        return nil
    }
}
