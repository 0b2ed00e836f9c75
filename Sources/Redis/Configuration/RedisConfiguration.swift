//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Where and how to connect: parsed from a URL, `redis://[user:password@]host:port/db`,
/// `rediss://...` for TLS, or `unix://[user:password@]/path/to/redis.sock?db=N`.
public struct RedisConfiguration: Sendable, Equatable, CustomStringConvertible {
    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var endpoint: Endpoint
    /// ACL user for `AUTH user password`; `nil` with a password means `AUTH password`.
    public var username: String?
    public var password: String?
    /// The database for `SELECT`.
    public var database: Int
    public var connectTimeout: Duration
    /// The socket timeout for every command on the connection: how long a silent connection is
    /// waited for before it is given up (see ``Defaults``).
    public var commandTimeout: Duration
    /// How long an idle connection whose server vanished may go unnoticed (TCP keepalive).
    public var keepalive: Duration
    /// TLS for every connection (`rediss://`); `nil` for plain TCP.
    public var tls: RedisTLSConfiguration?
    /// When set, the master is found through these sentinels, and `endpoint` is only where the
    /// last one was (the credentials and the database still apply to it).
    public var sentinel: SentinelConfiguration?
    /// When set, Redis is a cluster found through these seed nodes: every command goes to the
    /// master of its key's slot (see ``ClusterLink``), and `endpoint` is not used.
    public var cluster: ClusterConfiguration?

    public init(
        endpoint: Endpoint,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectTimeout: Duration = Defaults.connectTimeout,
        commandTimeout: Duration = Defaults.commandTimeout,
        keepalive: Duration = Defaults.keepalive,
        tls: RedisTLSConfiguration? = nil
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.keepalive = keepalive
        self.tls = tls
    }

    /// The documented defaults. A connection that goes silent (no FIN, no RST) is given up after
    /// the command timeout, and the others to its server with it (see ``ConnectionLosses``): the
    /// bridge resumes within about that time plus a reconnect, well inside 15 s. Long enough for
    /// Redis's own pauses: `DEBUG SLEEP`, a fork, a `CLIENT PAUSE` of a few seconds.
    public enum Defaults {
        public static let connectTimeout: Duration = .seconds(5)
        public static let commandTimeout: Duration = .seconds(5)
        public static let keepalive: Duration = .seconds(10)
    }

    /// The server when none is configured: a local Redis on its usual port.
    public static let defaultURL = "redis://127.0.0.1:6379/0"

    /// Parses a `redis://` or `unix://` URL.
    public init(url: String) throws(RedisError) {
        func invalid(_ why: String) -> RedisError {
            RedisError(code: .invalidConfiguration, message: "invalid Redis URL \"\(Self.redacted(url))\": \(why)")
        }
        let schemeEnd = url.firstRange(of: "://")
        guard let schemeEnd else { throw invalid("expected redis://host:port/db or unix:///path") }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(url[schemeEnd.upperBound...])
        var query: [String: String] = [:]
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                query[String(parts[0])] = parts.count > 1 ? Self.percentDecoded(parts[1]) : ""
            }
            rest = rest[..<q]
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : Self.percentDecoded(user)
                password = Self.percentDecoded(credentials[credentials.index(after: colon)...])
            } else if !credentials.isEmpty {
                // As RFC 3986 and redis-py read it: `redis://bridge@host` names a user whose
                // password comes from elsewhere (a password file).
                username = Self.percentDecoded(credentials)
            }
        }
        if let user = query["user"] ?? query["username"] { username = user }
        if let pass = query["password"] { password = pass }
        var database = 0
        if let db = query["db"] {
            guard let n = Int(db), n >= 0 else { throw invalid("db must be a non-negative integer") }
            database = n
        }
        switch scheme {
        case "redis", "rediss":
            var hostPort = rest
            if let slash = rest.firstIndex(of: "/") {
                hostPort = rest[..<slash]
                let path = rest[rest.index(after: slash)...]
                if !path.isEmpty {
                    guard let n = Int(path), n >= 0 else { throw invalid("the path must be a database number") }
                    database = n
                }
            }
            var host = String(hostPort)
            var port = 6379
            if hostPort.hasPrefix("[") {
                guard let close = hostPort.firstIndex(of: "]") else { throw invalid("unclosed [ in the host") }
                host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
                let after = hostPort[hostPort.index(after: close)...]
                if after.hasPrefix(":") {
                    guard let p = Int(after.dropFirst()) else { throw invalid("the port must be a number") }
                    port = p
                }
            } else if let colon = hostPort.lastIndex(of: ":") {
                host = String(hostPort[..<colon])
                guard let p = Int(hostPort[hostPort.index(after: colon)...]) else { throw invalid("the port must be a number") }
                port = p
            }
            guard !host.isEmpty else { throw invalid("the host is missing") }
            guard (1...65535).contains(port) else { throw invalid("the port must be between 1 and 65535") }
            self.init(endpoint: .tcp(host: host, port: port), username: username, password: password, database: database)
            if scheme == "rediss" { tls = RedisTLSConfiguration() }
        case "unix":
            guard rest.hasPrefix("/"), rest.count > 1 else { throw invalid("expected unix:///absolute/path/to/redis.sock") }
            self.init(endpoint: .unix(path: String(rest)), username: username, password: password, database: database)
        default:
            throw invalid("unknown scheme \"\(scheme)\"; expected redis://, rediss:// (TLS) or unix://")
        }
    }

    /// The URL without its password, for logs and errors (and the sentinels, when set).
    public var description: String {
        if let cluster { return "redis cluster \(cluster.seeds.map(Self.describe).joined(separator: ","))" }
        guard let sentinel else { return url }
        return "\(url) via \(sentinel)"
    }

    package static func describe(_ endpoint: Endpoint) -> String {
        switch endpoint {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return path
        }
    }

    private var url: String {
        let user = username.map { "\($0):***@" } ?? (password != nil ? ":***@" : "")
        switch endpoint {
        case .tcp(let host, let port):
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return "\(tls == nil ? "redis" : "rediss")://\(user)\(shownHost):\(port)/\(database)"
        case .unix(let path):
            return "unix://\(user)\(path)?db=\(database)"
        }
    }

    static func redacted(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let scheme = url.firstRange(of: "://") else { return url }
        return String(url[..<scheme.upperBound]) + "***" + String(url[at...])
    }

    static func percentDecoded(_ text: Substring) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let b = utf8.first {
            utf8 = utf8.dropFirst()
            if b == UInt8(ascii: "%"), utf8.count >= 2,
                let v = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(v)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
