//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// The timeouts of one HTTP/1 connection, as a value: the channel handler reports what it reads
/// and writes, and asks for the deadline to arm and for what to do when it passes. At most one
/// deadline runs at a time:
///
/// - **header**: a connection's first request head must be complete within the header timeout of
///   the accept (a TLS handshake included); a later head within it of its first byte (as Go's
///   `ReadHeaderTimeout`, after its `IdleTimeout`).
/// - **body**: a request's whole body within the body timeout of its head, a total (as Go's
///   `ReadTimeout`): a per-read timeout (nginx's) would let a body trickle in for ever.
/// - **idle**: a keep-alive connection that has had its answers waits the idle timeout for the
///   first byte of another request.
///
/// None runs while an answer is owed: a request read whole waits for its handler however long,
/// and a response streams for as long as it lasts (server-sent events). Pipelined bytes that
/// arrive meanwhile start their clock when the answers before them are written.
struct ConnectionTimeouts {
    typealias Instant = ContinuousClock.Instant

    /// The three limits.
    struct Limits: Sendable, Equatable {
        var header: Duration
        var body: Duration
        var idle: Duration
    }

    /// Which timeout passed.
    enum Reason: String, Sendable, CaseIterable {
        case header, body, idle
    }

    /// Where the inbound side is.
    enum Inbound: Equatable {
        /// Between requests; no byte of the next one yet.
        case waiting(since: Instant)
        /// Some bytes of a head, not all of it.
        case head(since: Instant)
        /// The head has gone to the application; the body is still arriving.
        case body(since: Instant)
    }

    /// What to do when the armed deadline passes.
    enum Expiry: Equatable {
        /// Nothing passed (the state moved on since the deadline was armed).
        case none
        /// Close without a word: the peer sent nothing that awaits an answer.
        case close(Reason)
        /// Answer 408, then close: the peer is part-way through a request.
        case requestTimeout(Reason)
    }

    let limits: Limits
    private(set) var inbound: Inbound
    /// Requests whose head was read and whose response has not ended.
    private(set) var owed = 0
    /// Whether the oldest owed request's response has begun.
    private(set) var responding = false
    /// Whether any head has been read: the first request's header clock runs from the accept.
    private var sawHead = false

    init(limits: Limits, acceptedAt now: Instant) {
        self.limits = limits
        self.inbound = .waiting(since: now)
    }

    /// The deadline to arm, and which timeout it is; `nil` when none runs.
    var deadline: (at: Instant, reason: Reason)? {
        if owed == 0 {
            switch inbound {
            case .waiting(let since): return sawHead ? (since + limits.idle, .idle) : (since + limits.header, .header)
            case .head(let since): return (since + limits.header, .header)
            case .body: return nil  // a head makes an answer owed
            }
        }
        if owed == 1, !responding, case .body(let since) = inbound {
            return (since + limits.body, .body)
        }
        return nil
    }

    /// Bytes of a new request arrived (before they are parsed).
    mutating func bytesReceived(now: Instant) {
        guard case .waiting(let since) = inbound else { return }
        // The first head's clock started at the accept: a byte every few seconds must not reset it.
        inbound = .head(since: sawHead ? now : since)
    }

    /// A request head was parsed and goes to the application.
    mutating func headReceived(now: Instant) {
        owed += 1
        sawHead = true
        inbound = .body(since: now)
        if owed == 1 { responding = false }
    }

    /// A request's body ended.
    mutating func requestEnded(now: Instant) {
        inbound = .waiting(since: now)
    }

    /// A response head was written. Returns whether its request's body is still arriving: a
    /// response that does not wait for the body (a refusal) ends the connection after it.
    mutating func responseStarted(now: Instant) -> Bool {
        responding = true
        if owed == 1, case .body = inbound { return true }
        return false
    }

    /// A response ended. Returns whether its request's body is still arriving (see
    /// ``responseStarted(now:)``).
    mutating func responseEnded(now: Instant) -> Bool {
        let unread: Bool
        if owed == 1, case .body = inbound { unread = true } else { unread = false }
        owed = max(0, owed - 1)
        responding = false
        // Whatever arrived while the answer was owed starts its clock now.
        switch inbound {
        case .waiting: inbound = .waiting(since: now)
        case .head: inbound = .head(since: now)
        case .body: inbound = .body(since: now)
        }
        return unread
    }

    /// The armed deadline passed at `now`.
    func expired(now: Instant) -> Expiry {
        guard let (at, reason) = deadline, now >= at else { return .none }
        switch (reason, inbound) {
        case (.header, .head), (.body, _): return .requestTimeout(reason)
        default: return .close(reason)
        }
    }
}
