//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Adaptive batching on the stream: whether a read's first entries wait a moment for more.
///
/// A batch pays its wake-ups and round trips (the read, the commit, the announcement) once,
/// whatever its size; one request at a time, each request pays them all. So when requests
/// arrive fast enough that at least ``minimumExpected`` more are due within the window, the
/// consumer sleeps for the window and reads again without blocking, and the batch goes on with
/// everything that came. The wait costs two wake-ups of its own (the sleep and the second read),
/// which is why it only pays past that many requests; below the rate it never waits, so a quiet
/// stream's latency is not touched. The added wait is at most the window. Measured at 5,000
/// requests a second (one `XADD` at a time): a 1 ms window cut the bridge's CPU per request from
/// 83 to 37 µs and its wake-ups from 1.9 to 0.5, for p50 0.5 to 1.6 ms and p99 1.3 to 3.5 ms.
///
/// The rate is the entries read over the last interval of ``interval`` or more (reads that
/// found nothing count, so the rate falls when the stream goes quiet).
struct BatchWindow: Sendable {
    /// The longest the first entries wait; zero never waits.
    let window: Duration
    /// Requests that must be due within the window for the wait to pay.
    static let minimumExpected = 2.0
    /// How long the rate is counted over before it is updated.
    static let interval = Duration.milliseconds(100)

    /// Entries a second over the last complete interval.
    private(set) var rate = 0.0
    private var counted = 0
    private var since: ContinuousClock.Instant?

    /// The longest window taken (a longer one is cut to it: `usleep` takes under a second).
    static let longest = Duration.milliseconds(100)

    init(window: Duration) {
        self.window = max(.zero, min(window, Self.longest))
    }

    /// Counts a read's entries (0 for one that found none).
    mutating func record(_ entries: Int, now: ContinuousClock.Instant = .now) {
        guard let start = since else {
            since = now
            counted = entries
            return
        }
        counted += entries
        let elapsed = now - start
        if elapsed >= Self.interval {
            rate = Double(counted) / elapsed.seconds
            counted = 0
            since = now
        }
    }

    /// Whether a read that brought `entries` (of at most `batchSize`) should wait for more.
    func waits(after entries: Int, batchSize: Int) -> Bool {
        window > .zero && entries > 0 && entries < batchSize && rate * window.seconds >= Self.minimumExpected
    }
}
