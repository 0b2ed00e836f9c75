//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Metrics
import Redis
import Synchronization

/// The bridge's counters, created once (swift-metrics; the executable chooses the backend).
public final class BridgeMetrics: Sendable {
    /// Where a request came in.
    public enum Path: String, Sendable {
        case stream
        case http
    }

    let conflicts = Counter(label: "taskstatus_rev_conflicts_total")
    let redeliveries = Counter(label: "taskstatus_redeliveries_total")
    let deadLettered = Counter(label: "taskstatus_dead_lettered_total")
    let claimed = Counter(label: "taskstatus_claimed_total")
    /// Completed tasks removed by retention (`--retention-days`).
    let retentionRemovals = Counter(label: "taskstatus_retention_removed_total")
    let rateLimited = Counter(label: "taskstatus_rate_limited_total")
    let batchSize = Recorder(label: "taskstatus_batch_size", aggregate: true)
    /// From a stream entry's creation (its id) to its reply.
    let streamLatency = Metrics.Timer(label: "taskstatus_request_duration_seconds", dimensions: [("path", "stream")])
    /// The consumer group's pending entries and its lag (entries not yet delivered).
    let pending = Gauge(label: "taskstatus_consumer_pending")
    let lag = Gauge(label: "taskstatus_consumer_lag")
    private let requestCounters = Mutex<[Int: Counter]>([:])
    private let shardMetrics = Mutex<[Int: Shard]>([:])

    /// With several shards, each one's: `taskstatus_shard_pending{shard}`,
    /// `taskstatus_shard_lag{shard}` and `taskstatus_shard_entries_total{shard}` (entries read by
    /// this bridge). Names of their own: one name's label set may not change within a registry.
    struct Shard: Sendable {
        let pending: Gauge
        let lag: Gauge
        let entries: Counter
    }

    func shard(_ k: Int) -> Shard {
        shardMetrics.withLock { all in
            if let found = all[k] { return found }
            let dimensions = [("shard", String(k))]
            let made = Shard(
                pending: Gauge(label: "taskstatus_shard_pending", dimensions: dimensions),
                lag: Gauge(label: "taskstatus_shard_lag", dimensions: dimensions),
                entries: Counter(label: "taskstatus_shard_entries_total", dimensions: dimensions)
            )
            all[k] = made
            return made
        }
    }
    private let refusalCounters = Mutex<[String: Counter]>([:])

    public init() {}

    /// Counts a round trip Redis refused or failed (`taskstatus_redis_refusals_total{reason}`, the
    /// reason being the error's first word, `connection` or `timeout`): what was refused is tried
    /// again, never answered as the request's fault.
    func countRefusal(_ error: RedisError) {
        let reason = error.kindLabel
        let counter = refusalCounters.withLock { counters in
            if let counter = counters[reason] { return counter }
            let counter = Counter(label: "taskstatus_redis_refusals_total", dimensions: [("reason", reason)])
            counters[reason] = counter
            return counter
        }
        counter.increment()
    }

    func countRequest(path: Path, status: Int, count: Int = 1) {
        let key = status * 2 + (path == .http ? 1 : 0)
        let counter = requestCounters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "taskstatus_requests_total", dimensions: [("path", path.rawValue), ("status", String(status))])
            counters[key] = counter
            return counter
        }
        counter.increment(by: count)
    }
}
