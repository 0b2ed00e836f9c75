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
    private let switchCounter = Atomic<UInt64>(0)

    private struct State {
        var master: RedisConfiguration.Endpoint?
        var watching = false
        /// Set from a sentinel's `+try-failover` until `+switch-master`, `+failover-end` or an
        /// abort (or a minute passes): a failover is under way.
        var failoverSince: ContinuousClock.Instant?
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

    /// How many `+switch-master` events for this name the watchers have heard. Unlike
    /// ``generation``, which every lost connection moves, only the sentinels move it: a back-off
    /// may end early when it changes, without turning into a busy loop while the old master is
    /// down and not yet replaced.
    public var switches: UInt64 { switchCounter.load(ordering: .acquiring) }

    /// Whether a failover is under way: a sentinel began one (`+try-failover`) and none has
    /// announced its end yet (or a minute passed). Nothing written meanwhile should become
    /// visible: the node that took it may be about to stop being the master, and a replica that
    /// confirmed it may be about to follow another one.
    public var isFailingOver: Bool {
        guard let since = state.withLock({ $0.failoverSince }) else { return false }
        return ContinuousClock.now - since < .seconds(60)
    }

    /// The master as most of the sentinels that answer name it now (asked when not known), and
    /// the generation it belongs to: during a failover the leader may name the old master for
    /// seconds after the others name the new one. Starts the watchers on first use.
    public func master(timeout: Duration) throws(RedisError) -> (endpoint: RedisConfiguration.Endpoint, generation: UInt64) {
        startWatching()
        let generation = self.generation
        if let known = state.withLock({ $0.master }) { return (known, generation) }
        var failures: [String] = []
        var named: [RedisConfiguration.Endpoint] = []
        var votes: [Int] = []
        for node in sentinel.nodes {
            do {
                let link = try RedisConnection(configuration: configuration(of: node, timeout: timeout))
                let reply = try link.execute([RedisCommand("SENTINEL", "get-master-addr-by-name", sentinel.masterName)])[0]
                guard case .array(let parts) = reply, parts.count == 2, let host = parts[0].string, let port = parts[1].int.map(Int.init) else {
                    failures.append("\(node) does not know \(sentinel.masterName) (\(reply))")
                    continue
                }
                let endpoint = RedisConfiguration.Endpoint.tcp(host: host, port: port)
                if let k = named.firstIndex(of: endpoint) {
                    votes[k] += 1
                } else {
                    named.append(endpoint)
                    votes.append(1)
                }
            } catch {
                failures.append("\(node): \(error.message)")
            }
        }
        var best = -1
        for k in votes.indices where best < 0 || votes[k] > votes[best] { best = k }
        guard best >= 0 else {
            throw RedisError(
                code: .connectionFailed,
                message: "no sentinel named the master \(sentinel.masterName): \(failures.joined(separator: "; "))"
            )
        }
        let chosen = named[best]
        state.withLock { $0.master = chosen }
        return (chosen, generation)
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

    private func note(_ event: String) {
        if event == "+try-failover" {
            state.withLock { $0.failoverSince = ContinuousClock.now }
            return
        }
        state.withLock { $0.failoverSince = nil }
        if event == "+switch-master" {
            invalidate(generation: generation)
            switchCounter.add(1, ordering: .releasing)
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

    /// Listens on every sentinel for a failover's start (only the leader announces it), its end
    /// and its aborts, each sentinel on a thread of its own, for the life of the process.
    private func startWatching() {
        let start = state.withLock { state in
            defer { state.watching = true }
            return !state.watching
        }
        guard start else { return }
        for node in sentinel.nodes {
            let thread = Thread { [self] in watch(node) }
            thread.name = "sentinel-watch"
            thread.start()
        }
    }

    private func watch(_ node: SentinelConfiguration.Node) {
        while true {
            do {
                let connection = try RedisConnection(configuration: configuration(of: node, timeout: .seconds(3)))
                try connection.send([RedisCommand("PSUBSCRIBE", "+try-failover", "+switch-master", "+failover-end", "-failover-abort-*")])
                for _ in 0..<4 { _ = try connection.readReply() }
                connection.setCommandTimeout(.seconds(3600))
                while true {
                    // `pmessage <pattern> <event> "<text>"`: the master's name is the first word of
                    // +switch-master's text, the second of the others'.
                    guard case .array(let parts) = try connection.readReply(), parts.count == 4, let event = parts[2].string,
                        let payload = parts[3].string
                    else { continue }
                    // (Words compared as Strings: comparing Substrings with a String here sent
                    // the 6.3 optimizer into an endless loop.)
                    let words = payload.split(separator: " ").prefix(2).map(String.init)
                    guard words.contains(sentinel.masterName) else { continue }
                    note(event)
                }
            } catch {
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
    }
}
