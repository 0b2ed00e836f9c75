//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Testing

@testable import Bridge

/// When a batch is worth handing to other threads.
@Suite("Hand-offs")
struct HandOffTests {
    @Test("a batch goes to the workers only with two busy parts and enough entries to pay for the wake-ups")
    func forking() {
        #expect(!StreamConsumer.forks(entries: 1, busyParts: 1), "one request at a time: the consumer runs it")
        #expect(!StreamConsumer.forks(entries: 500, busyParts: 1), "one busy part: nothing to run at the same time")
        #expect(!StreamConsumer.forks(entries: StreamConsumer.forkThreshold - 1, busyParts: 2))
        #expect(StreamConsumer.forks(entries: StreamConsumer.forkThreshold, busyParts: 2))
    }

    @Test("a read waits for more entries only while the rate promises at least two more within the window; it stops when the stream goes quiet")
    func batchWindow() {
        let start = ContinuousClock.now
        var window = BatchWindow(window: .milliseconds(1))
        #expect(!window.waits(after: 1, batchSize: 128), "no rate known yet")
        // 1,000 entries a second: one expected per millisecond, not worth two more wake-ups.
        window.record(0, now: start)
        window.record(100, now: start + .milliseconds(100))
        #expect(abs(window.rate - 1000) < 1)
        #expect(!window.waits(after: 1, batchSize: 128))
        // 5,000 a second: five expected.
        window.record(500, now: start + .milliseconds(200))
        #expect(window.waits(after: 1, batchSize: 128))
        #expect(!window.waits(after: 128, batchSize: 128), "a full batch goes at once")
        #expect(!window.waits(after: 0, batchSize: 128), "an empty read has nothing to hold")
        // Quiet: reads that find nothing bring the rate down.
        window.record(0, now: start + .milliseconds(1300))
        #expect(window.rate == 0)
        #expect(!window.waits(after: 1, batchSize: 128))
        // Off.
        var off = BatchWindow(window: .zero)
        off.record(0, now: start)
        off.record(100_000, now: start + .milliseconds(100))
        #expect(!off.waits(after: 1, batchSize: 128))
    }

    @Test("a deferral says why with a code: Redis's refusal by its first word; only a shortfall of replicas retries soon")
    func deferrals() {
        #expect(Deferral.refused("OOM command not allowed when used memory > 'maxmemory'.").code == .refused("OOM"))
        #expect(!Deferral.refused("READONLY You can't write against a read only replica.").retriesSoon)
        #expect(Deferral(.replicasShort, "NOREPLICAS only 0 of the 1 replicas required").retriesSoon)
        #expect(!Deferral(.contended, "the task was written by others").retriesSoon)
    }
}
