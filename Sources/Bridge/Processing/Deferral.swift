//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Why a request was neither answered nor acknowledged: Redis cannot take it for now, which is
/// never the request's fault. The stream tries it again after a back-off; HTTP answers 503 with
/// `Retry-After`.
public struct Deferral: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// Redis refused a command for now; the error's first word (`OOM`, `BUSY`, `LOADING`,
        /// `READONLY`, `TRYAGAIN`, ...).
        case refused(String)
        /// Fewer replicas than `--min-replicas` confirmed the commits in time (`WAIT` waited).
        case replicasShort
        /// Others wrote the task in every round while the update was decided.
        case contended
        /// Redis did not keep a large update's staged task.
        case stageMissing
        /// A request left neither answered nor deferred: a bug, tried again rather than answered
        /// with something made up.
        case unanswered
    }

    public let code: Code
    /// What to tell an operator (logs, readiness) and an HTTP caller (the 503's cause).
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Redis's refusal `message` (its first word is the code).
    public static func refused(_ message: String) -> Deferral {
        Deferral(.refused(String(message.prefix { $0 != " " })), message)
    }

    public var description: String { message }

    /// Whether the stream tries again soon rather than backing off: replicas that fell short
    /// were already waited for (`WAIT` took up to `--replica-timeout-ms`), and a shard whose
    /// master just got its replica back (after a failover) resumes within a second.
    public var retriesSoon: Bool { code == .replicasShort }
}
