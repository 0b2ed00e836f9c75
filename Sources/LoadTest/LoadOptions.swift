//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// How a load test drives the bridge.
public struct LoadOptions: Sendable {
    /// Which way requests reach the bridge.
    public enum Path: String, Sendable, CaseIterable {
        /// `XADD` to the request stream; replies on a Pub/Sub channel of the run.
        case stream
        /// `PATCH /task-status/{id}` over HTTP/1.1 keep-alive connections.
        case http
    }

    public var path: Path
    /// Requests per second on the open-loop schedule; `nil` sends as fast as the bridge answers,
    /// with at most ``concurrency`` requests outstanding.
    public var rate: Double?
    /// How long to send, in seconds; the run stops at whichever of this and ``count`` comes first.
    public var durationSeconds: Double?
    /// How many requests to send.
    public var count: Int?
    /// Stream path: the most requests outstanding when sending as fast as possible. HTTP path:
    /// the number of connections.
    public var concurrency: Int
    /// How long to wait for the last replies after the last request went out, in seconds.
    public var replyTimeoutSeconds: Double
    /// The `authorization` value sent with every request (`Bearer <JWT>`), if any.
    public var authorization: String?
    /// The base URL of the HTTP API (with a version prefix if wanted), for the HTTP path.
    public var httpURL: String
    /// Whether HTTP requests carry `X-Request-Id` (making them idempotent and their replies stored,
    /// as stream requests always are).
    public var httpRequestIds: Bool
    /// A name unique to this run: request ids, the reply channel and the task ids carry it.
    public var runId: String

    /// The longest run and the most requests one run may have: every load test ends by itself.
    public static let maximumSeconds = 3600.0
    public static let maximumCount = 50_000_000

    public init(
        path: Path,
        rate: Double?,
        durationSeconds: Double?,
        count: Int?,
        concurrency: Int,
        replyTimeoutSeconds: Double = 10,
        authorization: String? = nil,
        httpURL: String = "http://127.0.0.1:8080",
        httpRequestIds: Bool = true,
        runId: String
    ) {
        self.path = path
        self.rate = rate
        self.durationSeconds = durationSeconds
        self.count = count
        self.concurrency = max(1, concurrency)
        self.replyTimeoutSeconds = replyTimeoutSeconds
        self.authorization = authorization
        self.httpURL = httpURL
        self.httpRequestIds = httpRequestIds
        self.runId = runId
    }

    /// The schedule these options give, starting at `startNanos`.
    func schedule(startNanos: UInt64) -> Schedule {
        let seconds = min(durationSeconds ?? Self.maximumSeconds, Self.maximumSeconds)
        return Schedule(
            startNanos: startNanos,
            intervalNanos: rate.map { 1e9 / $0 },
            count: min(count ?? Self.maximumCount, Self.maximumCount),
            endNanos: startNanos + UInt64(seconds * 1e9)
        )
    }

    /// The time the run is expected to take, for sizing the chart's intervals.
    var expectedSeconds: Double {
        var seconds = min(durationSeconds ?? Self.maximumSeconds, Self.maximumSeconds)
        if let count, let rate { seconds = min(seconds, Double(count) / rate) }
        return seconds
    }
}

/// The open-loop schedule: request `n` is due at `start + n / rate`, whether or not the bridge has
/// answered the ones before it.
struct Schedule: Sendable {
    let startNanos: UInt64
    /// Nanoseconds between requests; `nil` for no schedule (as fast as it goes).
    let intervalNanos: Double?
    let count: Int
    let endNanos: UInt64

    /// When request `sequence` is due.
    func dueNanos(_ sequence: Int) -> UInt64 {
        guard let intervalNanos else { return startNanos }
        return startNanos + UInt64(Double(sequence) * intervalNanos)
    }

    /// How long until request `sequence` is due; 0 when it is due already.
    func nanosUntilDue(_ sequence: Int) -> UInt64 {
        let due = dueNanos(sequence)
        let now = monotonicNanos()
        return due > now ? due - now : 0
    }

    /// Whether request `sequence` belongs to the run at all.
    func includes(_ sequence: Int) -> Bool {
        sequence < count && dueNanos(sequence) < endNanos
    }

    /// How many requests are due by `now` (all of them are, without a rate).
    func dueCount(at now: UInt64) -> Int {
        guard let intervalNanos else { return count }
        guard now >= startNanos else { return 0 }
        let due = Int(Double(now - startNanos) / intervalNanos) + 1
        return min(due, count)
    }
}
