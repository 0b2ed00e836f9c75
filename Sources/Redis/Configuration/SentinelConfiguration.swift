//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation

/// Where to find the master through Redis Sentinel: the sentinels to ask, the name they monitor
/// it under, and their credentials (the master's are the configuration's own).
public struct SentinelConfiguration: Sendable, Hashable, CustomStringConvertible {
    public struct Node: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public var nodes: [Node]
    public var masterName: String
    public var username: String?
    public var password: String?
    /// TLS to the sentinels themselves; `nil` for plain sentinels (in front of TLS data nodes too).
    public var tls: RedisTLSConfiguration?

    public init(nodes: [Node], masterName: String, username: String? = nil, password: String? = nil, tls: RedisTLSConfiguration? = nil) {
        self.nodes = nodes
        self.masterName = masterName
        self.username = username
        self.password = password
        self.tls = tls
    }

    /// Reads `host:port[,host:port...]` (port `defaultPort` when left out).
    public static func nodes(parsing list: String, defaultPort: Int = 26379) throws(RedisError) -> [Node] {
        var nodes: [Node] = []
        for item in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            var host = item
            var port = defaultPort
            if let colon = item.lastIndex(of: ":"), !item.hasSuffix("]") {
                host = String(item[..<colon])
                guard let p = Int(item[item.index(after: colon)...]), (1...65535).contains(p) else {
                    throw RedisError(code: .invalidConfiguration, message: "\"\(item)\" is not host:port")
                }
                port = p
            }
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw RedisError(code: .invalidConfiguration, message: "\"\(item)\" has no host") }
            nodes.append(Node(host: host, port: port))
        }
        guard !nodes.isEmpty else { throw RedisError(code: .invalidConfiguration, message: "no sentinel given") }
        return nodes
    }

    public var description: String {
        "sentinel\(tls == nil ? "" : " (TLS)") \(nodes.map(\.description).joined(separator: ",")) master \(masterName)"
    }
}
