//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A failure to talk to Redis, saying what failed: the connection, a timeout, or the server's
/// own error text.
public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure; new kinds may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String {
            case invalidConfiguration = "invalid configuration"
            case connectionFailed = "connection failed"
            case timedOut = "timed out"
            case connectionLost = "connection lost"
            case protocolError = "protocol error"
            case serverError = "server error"
            case unexpectedReply = "unexpected reply"
            case certificateRejected = "certificate rejected"
            case tlsFailed = "TLS failed"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The URL or a setting is not usable.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// Connecting failed (refused, unknown host, authentication or database selection refused).
        public static let connectionFailed = Code(.connectionFailed)
        /// A connect or a command took longer than its timeout.
        public static let timedOut = Code(.timedOut)
        /// The connection broke while in use.
        public static let connectionLost = Code(.connectionLost)
        /// Redis sent something hiredis could not read.
        public static let protocolError = Code(.protocolError)
        /// Redis answered a command with an error (`message` holds its text, e.g. `NOSCRIPT ...`).
        public static let serverError = Code(.serverError)
        /// A reply had a shape the caller did not expect.
        public static let unexpectedReply = Code(.unexpectedReply)
        /// A certificate was refused: the server's by us (unknown CA, wrong name, expired), or
        /// ours by the server. A configuration matter: at start it stops the process.
        public static let certificateRejected = Code(.certificateRejected)
        /// TLS failed otherwise, e.g. a plain port reached with `rediss://` or a TLS port with `redis://`.
        public static let tlsFailed = Code(.tlsFailed)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// Whether retrying on a new connection may succeed (the connection, not the request, failed).
    public var isConnectionFailure: Bool {
        code == .connectionFailed || code == .timedOut || code == .connectionLost || code == .protocolError || code == .certificateRejected
            || code == .tlsFailed
    }

    /// For server errors, the error's first word (`NOSCRIPT`, `NOGROUP`, `BUSYGROUP`, `WRONGTYPE`).
    public var serverErrorPrefix: Substring? {
        guard code == .serverError else { return nil }
        return message.split(separator: " ", maxSplits: 1).first
    }

    /// Whether the failure is Redis's state for now, not the command's fault: the connection
    /// failed, or the server refused with one of ``transientPrefixes``. Retrying the same command
    /// later may succeed.
    public var isTransient: Bool {
        if isConnectionFailure { return true }
        guard let prefix = serverErrorPrefix else { return false }
        return Self.transientPrefixes.contains(prefix)
    }

    /// Whether a server error message (an error reply) is a refusal for now rather than the
    /// command's fault.
    public static func isTransient(serverError message: some StringProtocol) -> Bool {
        guard let prefix = message.split(separator: " ", maxSplits: 1).first else { return false }
        return transientPrefixes.contains(Substring(prefix))
    }

    /// The first words of the error replies with which Redis refuses a command for a while:
    /// memory full (`OOM`), a script running (`BUSY`), loading its data (`LOADING`), a replica or a
    /// master without its replicas or link (`READONLY`, `MASTERDOWN`, `NOREPLICAS`), persistence
    /// failing (`MISCONF`), a cluster in flux (`TRYAGAIN`, `CLUSTERDOWN`), its scripts flushed
    /// (`NOSCRIPT`), a blocked read ended by a role change (`UNBLOCKED`), a cluster redirect the
    /// client could not follow in time (`MOVED`, `ASK`), and a transaction discarded because of
    /// one of these (`EXECABORT`).
    public static let transientPrefixes: Set<Substring> = [
        "OOM", "BUSY", "LOADING", "READONLY", "MASTERDOWN", "NOREPLICAS", "MISCONF", "TRYAGAIN", "CLUSTERDOWN", "NOSCRIPT", "UNBLOCKED", "MOVED",
        "ASK",
        "EXECABORT",
    ]

    /// A short name for what failed, for a metric's label: the server's error word, or the kind
    /// of connection failure.
    public var kindLabel: String {
        if let prefix = serverErrorPrefix { return String(prefix) }
        switch code {
        case .timedOut: return "timeout"
        case .connectionFailed, .connectionLost, .protocolError: return "connection"
        case .certificateRejected, .tlsFailed: return "tls"
        default: return "other"
        }
    }

    public var description: String { "redis \(code): \(message)" }
}
