//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Dispatch
import Histogram
import Synchronization

/// Nanoseconds on the monotonic clock: cheap to read, and plain numbers to subtract.
@inline(__always)
func monotonicNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// What a load test has seen so far, shared by the sender, the reply readers and the progress line.
///
/// Latency is measured from when each request was *meant* to be sent (its slot in the open-loop
/// schedule), not from when it went out, so that a stalled bridge shows up in the figures instead
/// of silently slowing the load down (no coordinated omission).
public final class LoadRecorder: Sendable {
    /// Latencies are kept in microseconds, from 1 µs to 10 minutes, with 3 significant digits.
    static let highestMicroseconds: UInt64 = 600_000_000

    struct Interval {
        var answered = 0
        var latency = Histogram<UInt64>(highestTrackableValue: LoadRecorder.highestMicroseconds, numberOfSignificantValueDigits: .two)
    }

    struct State {
        var pending: [Int: UInt64] = [:]
        var sent = 0
        var answered = 0
        var latency = Histogram<UInt64>(highestTrackableValue: LoadRecorder.highestMicroseconds, numberOfSignificantValueDigits: .three)
        var statuses: [Int: Int] = [:]
        var mismatches = 0
        var duplicates = 0
        var transportErrors = 0
        var examples: [String] = []
        var timeline: [Interval] = []
        var lastAnsweredNanos: UInt64 = 0
    }

    public let startNanos: UInt64
    /// The width of one point of the latency-over-time chart.
    public let intervalNanos: UInt64
    private let state = Mutex(State())
    private static let exampleLimit = 10

    public init(startNanos: UInt64, intervalNanos: UInt64) {
        self.startNanos = startNanos
        self.intervalNanos = max(1, intervalNanos)
    }

    /// Registers requests that are about to go out (stream path: the reply arrives elsewhere).
    func sending(_ requests: some Sequence<(sequence: Int, intendedNanos: UInt64)>) {
        state.withLock { state in
            for request in requests {
                state.pending[request.sequence] = request.intendedNanos
                state.sent += 1
            }
        }
    }

    /// Counts a request that goes out and is answered by the same caller (HTTP path).
    func sendingOne() {
        state.withLock { $0.sent += 1 }
    }

    /// The intended send time of a pending request, removing it; `nil` when it is not pending
    /// (a duplicate reply, or one from another run).
    func takePending(_ sequence: Int) -> UInt64? {
        state.withLock { state in
            guard let intended = state.pending.removeValue(forKey: sequence) else {
                state.duplicates += 1
                return nil
            }
            return intended
        }
    }

    /// Records one answer; `problem` says why it is wrong, `nil` when it is right.
    func answered(intendedNanos: UInt64, receivedNanos: UInt64, status: Int, problem: String?, sequence: Int) {
        let micros = receivedNanos > intendedNanos ? (receivedNanos - intendedNanos + 500) / 1000 : 0
        let clamped = min(max(micros, 1), Self.highestMicroseconds)
        let bucket = Int((receivedNanos &- startNanos) / intervalNanos)
        state.withLock { state in
            state.answered += 1
            state.lastAnsweredNanos = max(state.lastAnsweredNanos, receivedNanos)
            _ = state.latency.record(clamped)
            state.statuses[status, default: 0] += 1
            if bucket >= 0, bucket < 100_000 {
                while state.timeline.count <= bucket { state.timeline.append(Interval()) }
                state.timeline[bucket].answered += 1
                _ = state.timeline[bucket].latency.record(clamped)
            }
            if let problem {
                state.mismatches += 1
                if state.examples.count < Self.exampleLimit { state.examples.append("request \(sequence): \(problem)") }
            }
        }
    }

    /// Records a request that got no HTTP answer (connection refused or reset).
    func transportError(_ message: String, sequence: Int) {
        state.withLock { state in
            state.transportErrors += 1
            if state.examples.count < Self.exampleLimit { state.examples.append("request \(sequence): \(message)") }
        }
    }

    /// A reply found only where the bridge stores it (its publication was missed): right or wrong,
    /// but without a latency.
    func answeredLate(status: Int, problem: String?, sequence: Int) {
        state.withLock { state in
            state.answered += 1
            state.statuses[status, default: 0] += 1
            if let problem {
                state.mismatches += 1
                if state.examples.count < Self.exampleLimit { state.examples.append("request \(sequence): \(problem)") }
            }
        }
    }

    /// The requests still waiting for a reply.
    func pendingSequences() -> [Int] { state.withLock { Array($0.pending.keys).sorted() } }

    /// Drops the requests still pending, noting them as missing.
    func abandonPending() -> Int {
        state.withLock { state in
            let missing = state.pending.count
            for sequence in state.pending.keys.sorted().prefix(max(0, Self.exampleLimit - state.examples.count)) {
                state.examples.append("request \(sequence): no reply")
            }
            state.pending.removeAll()
            return missing
        }
    }

    var outstanding: Int { state.withLock { $0.pending.count } }

    /// Sent and answered so far, and the latency of the last full interval, for the progress line.
    func progress() -> (sent: Int, answered: Int, mismatches: Int, lastP99Micros: UInt64?) {
        state.withLock { state in
            let elapsed = Int((monotonicNanos() &- startNanos) / intervalNanos)
            let last = elapsed - 1 < state.timeline.count && elapsed >= 1 ? state.timeline[elapsed - 1] : nil
            let p99 = last.flatMap { $0.answered > 0 ? $0.latency.valueAtPercentile(99) : nil }
            return (state.sent, state.answered, state.mismatches + state.transportErrors, p99)
        }
    }

    /// The figures of the whole run.
    func summary(endNanos: UInt64) -> LoadSummary {
        state.withLock { state in
            let lastAnswer = state.lastAnsweredNanos > 0 ? state.lastAnsweredNanos : endNanos
            let seconds = Double(lastAnswer &- startNanos) / 1e9
            let h = state.latency
            func at(_ p: Double) -> Double { h.totalCount == 0 ? 0 : Double(h.valueAtPercentile(p)) / 1000 }
            return LoadSummary(
                sent: state.sent,
                answered: state.answered,
                seconds: seconds,
                throughput: seconds > 0 ? Double(h.totalCount) / seconds : 0,
                latencyMilliseconds: .init(
                    p50: at(50),
                    p90: at(90),
                    p99: at(99),
                    p999: at(99.9),
                    max: h.totalCount == 0 ? 0 : Double(h.max) / 1000,
                    mean: h.totalCount == 0 ? 0 : h.mean / 1000
                ),
                statuses: Dictionary(uniqueKeysWithValues: state.statuses.map { (String($0.key), $0.value) }),
                mismatches: state.mismatches,
                missing: 0,
                duplicates: state.duplicates,
                transportErrors: state.transportErrors,
                examples: state.examples,
                timeline: state.timeline.enumerated().map { index, interval in
                    LoadSummary.Point(
                        seconds: Double(UInt64(index + 1) * intervalNanos) / 1e9,
                        answered: interval.answered,
                        throughput: Double(interval.answered) / (Double(intervalNanos) / 1e9),
                        p50: interval.answered == 0 ? nil : Double(interval.latency.valueAtPercentile(50)) / 1000,
                        p99: interval.answered == 0 ? nil : Double(interval.latency.valueAtPercentile(99)) / 1000,
                        max: interval.answered == 0 ? nil : Double(interval.latency.max) / 1000
                    )
                }
            )
        }
    }
}

/// The figures of a load test, as printed and as written in JSON.
public struct LoadSummary: Sendable, Codable {
    public struct Latency: Sendable, Codable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var p999: Double
        public var max: Double
        public var mean: Double
    }

    /// One point of latency over time: the answers that arrived in one interval.
    public struct Point: Sendable, Codable {
        public var seconds: Double
        public var answered: Int
        public var throughput: Double
        public var p50: Double?
        public var p99: Double?
        public var max: Double?
    }

    public var sent: Int
    public var answered: Int
    /// From the start to the last answer.
    public var seconds: Double
    /// Answers with a measured latency per second.
    public var throughput: Double
    public var latencyMilliseconds: Latency
    public var statuses: [String: Int]
    /// Answers that did not match what was sent.
    public var mismatches: Int
    /// Requests that got no answer at all.
    public var missing: Int
    /// Answers to requests that were not pending (answered twice).
    public var duplicates: Int
    /// HTTP requests that failed without an answer.
    public var transportErrors: Int
    /// A few examples of what went wrong.
    public var examples: [String]
    public var timeline: [Point]

    /// Whether every request got exactly one right answer.
    public var isClean: Bool { mismatches == 0 && missing == 0 && duplicates == 0 && transportErrors == 0 && answered == sent }
}
