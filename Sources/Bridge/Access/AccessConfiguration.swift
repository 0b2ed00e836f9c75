//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Who may do what: JWT verification and the scopes each operation needs.
public struct AuthConfiguration: Sendable {
    /// A key that verifies token signatures.
    public enum Key: Sendable {
        /// HS256 with this shared secret.
        case hmacSecret([UInt8])
        /// RS256 or ES256 with this public key (PEM: `-----BEGIN PUBLIC KEY-----` or an RSA key).
        case publicKeyPEM(String)
        /// Keys from a JSON Web Key Set, chosen by the token's `kid`.
        case jwks(String)
    }

    /// The verification keys; empty means authentication is off (`--no-auth`).
    public var keys: [Key]
    /// When set, the token's `iss` must equal it.
    public var issuer: String?
    /// When set, the token's `aud` must include it.
    public var audience: String?
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    public var leeway: Duration
    /// Scopes that allow reading a task (any one of them).
    public var readScopes: Set<String>
    /// Scopes that allow updating a task (any one of them).
    public var writeScopes: Set<String>
    /// Whether a token must carry `exp`. On by default: a token without one is valid forever once
    /// it leaks. Turning it off is a risk to take knowingly (`--jwt-require-exp false`).
    public var requiresExpiry: Bool

    public init(
        keys: [Key] = [],
        issuer: String? = nil,
        audience: String? = nil,
        leeway: Duration = .seconds(Defaults.leewaySeconds),
        readScopes: Set<String> = Defaults.readScopes,
        writeScopes: Set<String> = Defaults.writeScopes,
        requiresExpiry: Bool = Defaults.requiresExpiry
    ) {
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.readScopes = readScopes
        self.writeScopes = writeScopes
        self.requiresExpiry = requiresExpiry
    }

    public var isEnabled: Bool { !keys.isEmpty }

    /// The documented defaults (see ``BridgeConfiguration/Defaults``).
    public enum Defaults {
        public static let leewaySeconds = 60
        public static let readScopes: Set<String> = ["idn:task-management:read", "sp:scopes:all"]
        public static let writeScopes: Set<String> = ["idn:task-management:write", "sp:scopes:all"]
        public static let requiresExpiry = true
    }
}

/// A per-caller limit kept in Redis (GCRA), so that every bridge instance enforces one shared
/// limit. The default is SailPoint's published one: 100 requests per caller per 10 seconds.
public struct RateLimitConfiguration: Sendable, Equatable {
    public var enabled: Bool
    /// Requests allowed per `period`, steadily.
    public var limit: Int
    public var period: Duration
    /// Requests allowed at once after a quiet spell.
    public var burst: Int

    public init(enabled: Bool = true, limit: Int = Defaults.limit, period: Duration = .seconds(Defaults.periodSeconds), burst: Int? = nil) {
        self.enabled = enabled
        self.limit = max(1, limit)
        self.period = period
        self.burst = max(1, burst ?? limit)
    }

    /// The documented defaults (see ``BridgeConfiguration/Defaults``); the burst defaults to the limit.
    public enum Defaults {
        public static let limit = 100
        public static let periodSeconds = 10
    }

    /// Milliseconds between two requests at the steady rate.
    var emissionInterval: Int64 { max(1, period.milliseconds / Int64(limit)) }
    /// How far ahead of the steady rate a caller may run, in milliseconds.
    var tolerance: Int64 { emissionInterval * Int64(burst - 1) }
}
