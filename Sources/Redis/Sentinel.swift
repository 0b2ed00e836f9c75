//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import Synchronization

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

    public init(nodes: [Node], masterName: String, username: String? = nil, password: String? = nil) {
        self.nodes = nodes
        self.masterName = masterName
        self.username = username
        self.password = password
    }

    /// Reads `host:port[,host:port...]` (port 26379 when left out).
    public static func nodes(parsing list: String) throws(RedisError) -> [Node] {
        var nodes: [Node] = []
        for item in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            var host = item
            var port = 26379
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

    public var description: String { "sentinel \(nodes.map(\.description).joined(separator: ",")) master \(masterName)" }
}

/// The current master of one monitored name, shared by every connection of the process that goes
/// through the same sentinels: asked of the sentinels in turn when unknown, forgotten (a new
/// generation) after a lost connection, a `READONLY` or `UNBLOCKED` answer, or a `+switch-master`
/// event, so that every connection follows a failover at its next call.
public final class SentinelRouter: Sendable {
    public let sentinel: SentinelConfiguration
    private let state = Mutex(State())
    private let generationCounter = Atomic<UInt64>(1)

    private struct State {
        var master: RedisConfiguration.Endpoint?
        var watching = false
    }

    private static let routers = Mutex<[SentinelConfiguration: SentinelRouter]>([:])

    /// The process's router for these sentinels and name.
    public static func shared(for sentinel: SentinelConfiguration) -> SentinelRouter {
        routers.withLock { routers in
            if let router = routers[sentinel] { return router }
            let router = SentinelRouter(sentinel: sentinel)
            routers[sentinel] = router
            return router
        }
    }

    private init(sentinel: SentinelConfiguration) {
        self.sentinel = sentinel
    }

    /// Changes whenever the master may have changed; a connection made under an older
    /// generation is dropped at its next call.
    public var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    /// The master as the sentinels name it now (asked when not known), and the generation it
    /// belongs to. Starts the watcher of `+switch-master` on first use.
    public func master(timeout: Duration) throws(RedisError) -> (endpoint: RedisConfiguration.Endpoint, generation: UInt64) {
        startWatching()
        let generation = self.generation
        if let known = state.withLock({ $0.master }) { return (known, generation) }
        var failures: [String] = []
        for node in sentinel.nodes {
            do {
                let link = try RedisConnection(configuration: configuration(of: node, timeout: timeout))
                let reply = try link.execute([RedisCommand("SENTINEL", "get-master-addr-by-name", sentinel.masterName)])[0]
                guard case .array(let parts) = reply, parts.count == 2, let host = parts[0].string, let port = parts[1].int.map(Int.init) else {
                    failures.append("\(node) does not know \(sentinel.masterName) (\(reply))")
                    continue
                }
                let endpoint = RedisConfiguration.Endpoint.tcp(host: host, port: port)
                state.withLock { $0.master = endpoint }
                return (endpoint, generation)
            } catch {
                failures.append("\(node): \(error.message)")
            }
        }
        throw RedisError(code: .connectionFailed, message: "no sentinel named the master \(sentinel.masterName): \(failures.joined(separator: "; "))")
    }

    /// Forgets the master, unless a newer generation already did: the next connection asks the
    /// sentinels again.
    public func invalidate(generation seen: UInt64) {
        state.withLock { state in
            guard generationCounter.load(ordering: .acquiring) == seen else { return }
            state.master = nil
            generationCounter.add(1, ordering: .releasing)
        }
    }

    private func configuration(of node: SentinelConfiguration.Node, timeout: Duration) -> RedisConfiguration {
        RedisConfiguration(
            endpoint: .tcp(host: node.host, port: node.port),
            username: sentinel.username,
            password: sentinel.password,
            connectTimeout: timeout,
            commandTimeout: timeout
        )
    }

    /// Listens for `+switch-master` on the sentinels, one at a time, on a thread of its own, for
    /// the life of the process.
    private func startWatching() {
        let start = state.withLock { state in
            defer { state.watching = true }
            return !state.watching
        }
        guard start else { return }
        let thread = Thread { [self] in watch() }
        thread.name = "sentinel-watch"
        thread.start()
    }

    private func watch() {
        var next = 0
        while true {
            let node = sentinel.nodes[next % sentinel.nodes.count]
            next += 1
            do {
                let connection = try RedisConnection(configuration: configuration(of: node, timeout: .seconds(3)))
                try connection.send([RedisCommand("SUBSCRIBE", "+switch-master")])
                _ = try connection.readReply()
                connection.setCommandTimeout(.seconds(3600))
                while true {
                    // `message +switch-master "<name> <old ip> <old port> <new ip> <new port>"`
                    guard case .array(let parts) = try connection.readReply(), parts.count == 3,
                        let payload = parts[2].string, payload.split(separator: " ").first.map(String.init) == sentinel.masterName
                    else { continue }
                    invalidate(generation: generation)
                }
            } catch {
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
    }
}
