//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Metrics
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
    let batchSize = Recorder(label: "taskstatus_batch_size", aggregate: true)
    private let requestCounters = Mutex<[Int: Counter]>([:])

    public init() {}

    func countRequest(path: Path, status: Int) {
        let key = status * 2 + (path == .http ? 1 : 0)
        let counter = requestCounters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "taskstatus_requests_total", dimensions: [("path", path.rawValue), ("status", String(status))])
            counters[key] = counter
            return counter
        }
        counter.increment()
    }
}
