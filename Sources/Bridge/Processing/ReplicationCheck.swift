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
/// letters alike. The marker it writes first is the bridge's own key; the Redis module only says
/// which nodes a link wrote to.
struct ReplicationCheck {
    let minimum: Int
    let marker: String
    let timeoutMilliseconds: Int64
    /// With Sentinel: whether a failover is under way.
    let router: SentinelRouter?

    /// `nil` when no replica needs to confirm anything.
    init?(configuration: BridgeConfiguration) {
        guard configuration.minReplicas > 0 else { return nil }
        minimum = configuration.minReplicas
        marker = configuration.keys.replicationMarker
        timeoutMilliseconds = max(1, configuration.replicaTimeout.milliseconds)
        router = configuration.redis.sentinel.map(SentinelRouter.shared(for:))
    }

    /// Runs `pipeline`, then has the replicas of every node it wrote to confirm it, and says
    /// whether they did (`nil`) or why not (a `NOREPLICAS` text). On one node the confirmation
    /// rides in the same round trip: the pipeline's replies come first.
    func execute(
        _ pipeline: RedisPipeline,
        on link: RedisLink,
        confirming what: String
    ) throws(RedisError) -> (replies: RedisReplies, shortfall: Deferral?) {
        guard link.routesBySlot else {
            var pipeline = pipeline
            // A write every replica receives (so that `WAIT` covers the replies this connection
            // found stored too, written by others), then `WAIT`: its answer is the last.
            pipeline.begin("PUBLISH")
            pipeline.add(marker)
            pipeline.add("")
            addWait(to: &pipeline)
            let replies = try link.execute(pipeline)
            _ = link.takeNodesWritten()
            return (replies, shortfall(replies[replies.count - 1], confirming: what))
        }
        let replies = pipeline.isEmpty ? RedisReplies(assembling: []) : try link.execute(pipeline)
        // On a cluster, each node's own replicas confirm what went to it, after a marker write
        // there (a `PUBLISH` reaches the other nodes over the cluster bus, not the replicas).
        let nodes = link.takeNodesWritten()
        guard !nodes.isEmpty else { return (replies, nil) }
        let work = nodes.map { node in
            var confirm = RedisPipeline()
            if let slot = node.slot {
                confirm.begin("SET")
                confirm.add(joining: marker, "{", HashSlot.tag(forSlot: slot), "}")
                confirm.add("1")
            }
            addWait(to: &confirm)
            return (node: node, pipeline: confirm)
        }
        let answers = try link.execute(onEach: work)
        for (node, answer) in zip(nodes, answers) {
            let wait = answer[answer.count - 1]
            if let message = wait.errorMessage, message.contains("replica") {
                // Written to before a failover made it a replica: nothing it took is confirmed.
                // Said as what it is, a shortfall of replicas (tried again soon, on the new
                // master), not as the commands' error.
                return (
                    replies, Deferral(.replicasShort, "NOREPLICAS \(node) is a replica now (a failover): \(what) will be confirmed on its new master")
                )
            }
            if let shortfall = shortfall(wait, confirming: what) { return (replies, shortfall) }
        }
        return (replies, nil)
    }

    private func addWait(to pipeline: inout RedisPipeline) {
        pipeline.begin("WAIT")
        pipeline.add(minimum)
        pipeline.add(timeoutMilliseconds)
    }

    /// Why a `WAIT` reply does not confirm `what` was written ("the commits", "the dead letter");
    /// `nil` when it does.
    private func shortfall(_ reply: RedisValue, confirming what: String) -> Deferral? {
        if let message = reply.errorMessage { return .refused(message) }
        let confirmed = reply.int ?? 0
        guard confirmed >= Int64(minimum) else {
            return Deferral(
                .replicasShort,
                "NOREPLICAS only \(confirmed) of the \(minimum) replicas required (--min-replicas) confirmed \(what) within \(timeoutMilliseconds) ms"
            )
        }
        // A sentinel is promoting a replica: one that confirmed may be about to follow the new
        // master and drop what this one took. Checked after WAIT: what lands after the promotion
        // began is confirmed again once the new master holds the request.
        if router?.isFailingOver == true {
            return Deferral(.replicasShort, "NOREPLICAS a Sentinel failover is under way; \(what) will be confirmed on the new master")
        }
        return nil
    }
}
