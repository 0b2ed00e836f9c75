//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// TLS to Redis (`rediss://`): whom to trust, who we are, and which name the server's certificate
/// must carry.
///
/// Every connection of every topology uses the same settings: a single node, the replicas and the
/// sentinels a failover names, each node of a cluster. TLS 1.2 or later; the chain is verified,
/// and so is the name (or IP address) the connection was made to, against the certificate's
/// subjectAltName.
public struct RedisTLSConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// PEM file of the certificate authorities to trust; `nil` trusts the system's store.
    public var caFile: String?
    /// PEM file of the client certificate (its chain may follow it), for servers that ask for one.
    public var certificateFile: String?
    /// PEM file of the client certificate's private key.
    public var keyFile: String?
    /// The name sent as SNI and verified in the server's certificate, for every node: for nodes
    /// reached by IP address whose certificate names the service (Azure, a cluster announcing IPs).
    public var serverName: String?
    /// `false` accepts any certificate: for tests and emergencies only; a warning is logged at start.
    public var verifiesPeer: Bool
    /// The DNS name the user gave for the service (a URL's or a cluster seed's host), verified
    /// for nodes that the topology reports by IP address; set by the topology, not a setting.
    public var seedName: String?

    public init(
        caFile: String? = nil,
        certificateFile: String? = nil,
        keyFile: String? = nil,
        serverName: String? = nil,
        verifiesPeer: Bool = true
    ) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.verifiesPeer = verifiesPeer
    }

    /// The name to verify for a connection to `host`: the configured server name; else the host
    /// when it is a DNS name; else `seedName` (the DNS name the user gave for the service, when
    /// the topology reports its nodes by IP address); else the IP address itself.
    public func verifiedName(forHost host: String, seedName: String? = nil) -> String {
        if let serverName { return serverName }
        if !Self.isIPAddress(host) { return host }
        if let seedName, !Self.isIPAddress(seedName) { return seedName }
        return host
    }

    /// Whether `host` is an IPv4 or IPv6 literal (verified against IP SANs, sent without SNI).
    public static func isIPAddress(_ host: String) -> Bool {
        if host.contains(":") { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in part.count <= 3 && UInt8(part) != nil }
    }

    public var description: String {
        var parts = [caFile.map { "CA \($0)" } ?? "system CAs"]
        if let certificateFile { parts.append("client certificate \(certificateFile)") }
        if let serverName { parts.append("server name \(serverName)") }
        if !verifiesPeer { parts.append("NOT VERIFIED") }
        if let seedName, serverName == nil { parts.append("nodes by IP verified as \(seedName)") }
        return "TLS (\(parts.joined(separator: ", ")))"
    }
}

extension RedisTLSConfiguration {
    /// Loads the files now (once for the process): a CA, certificate or key file that cannot be
    /// read, or a key that does not match its certificate, is refused with the file's name.
    public func check() throws(RedisError) {
        _ = try TLSContext.shared(for: self)
    }
}
