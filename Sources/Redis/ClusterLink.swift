//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A blocking client of a Redis Cluster: the slot map (`CLUSTER SLOTS`), one connection per
/// master, and each command sent to the master of its key's slot, following `MOVED` and `ASK`.
///
/// Like ``RedisLink``, for code on a thread of its own, one call at a time. A pipeline is split per
/// node; commands for one node keep their order, and so do the commands of one slot when a
/// redirect sends them on, so that one task's commands never overtake each other. What is not a
/// redirect (`TRYAGAIN`, `CLUSTERDOWN`, a lost connection) is the caller's to retry.
public final class ClusterLink {
    /// A command and the slot of the key it works on.
    public struct Routed: Sendable {
        public var command: RedisCommand
        public var slot: Int

        public init(_ command: RedisCommand, slot: Int) {
            self.command = command
            self.slot = slot
        }

        /// A command routed by its key.
        public init(_ command: RedisCommand, key: String) {
            self.init(command, slot: HashSlot.of(key))
        }
    }

    public let seeds: [RedisConfiguration.Endpoint]
    /// User, password and timeouts for every node; its endpoint is not used.
    public let configuration: RedisConfiguration
    /// How many redirects one command may follow before the call fails.
    public var maxRedirects = 5
    public private(set) var slotMap: ClusterSlotMap?
    private var connections: [RedisConfiguration.Endpoint: RedisConnection] = [:]

    public init(seeds: [RedisConfiguration.Endpoint], configuration: RedisConfiguration) {
        self.seeds = seeds
        self.configuration = configuration
    }

    /// Reads the slot map again from the first node that answers: the known masters, then the seeds.
    public func refresh() throws(RedisError) {
        var failures: [String] = []
        var asked: Set<RedisConfiguration.Endpoint> = []
        for node in (slotMap?.masters ?? []) + seeds where asked.insert(node).inserted {
            do {
                let reply = try connection(to: node).execute([RedisCommand("CLUSTER", "SLOTS")])[0].get()
                slotMap = try ClusterSlotMap(parsingSlots: reply, fallbackHost: Self.host(of: node))
                // Connections to nodes that no longer serve slots are closed.
                let masters = Set(slotMap?.masters ?? [])
                connections = connections.filter { masters.contains($0.key) }
                return
            } catch {
                drop(node)
                failures.append("\(node): \(error.message)")
            }
        }
        throw RedisError(code: .connectionFailed, message: "no cluster node gave its slots: \(failures.joined(separator: "; "))")
    }

    /// Sends the commands, each to its slot's master (one round trip per node), following
    /// redirects, and returns one reply per command in the order given.
    public func execute(_ commands: [Routed]) throws(RedisError) -> [RedisReply] {
        if slotMap == nil { try refresh() }
        var replies = [RedisReply](repeating: .null, count: commands.count)
        var asking: [Int: RedisConfiguration.Endpoint] = [:]
        var pending = Array(commands.indices)
        var refreshed = false
        for _ in 0...maxRedirects {
            // Group by target, nodes in the order of their first command, commands in order.
            var order: [RedisConfiguration.Endpoint] = []
            var groups: [RedisConfiguration.Endpoint: [Int]] = [:]
            for i in pending {
                guard let target = asking[i] ?? slotMap?.master(of: commands[i].slot) else {
                    throw RedisError(code: .serverError, message: "CLUSTERDOWN no master serves slot \(commands[i].slot)")
                }
                if groups[target] == nil { order.append(target) }
                groups[target, default: []].append(i)
            }
            var redirected: [Int] = []
            var moved = false
            for node in order {
                let indices = groups[node]!
                var batch: [RedisCommand] = []
                for i in indices {
                    if asking[i] != nil { batch.append(RedisCommand("ASKING")) }
                    batch.append(commands[i].command)
                }
                let answers: [RedisReply]
                do {
                    answers = try connection(to: node).execute(batch)
                } catch {
                    // The node may be gone (a failover): ask for the map again next time.
                    drop(node)
                    slotMap = nil
                    throw error
                }
                var k = 0
                for i in indices {
                    if asking[i] != nil { k += 1 }
                    replies[i] = answers[k]
                    k += 1
                    guard case .error(let message) = replies[i],
                        let redirect = ClusterRedirect(errorMessage: message, fallbackHost: Self.host(of: node))
                    else {
                        asking[i] = nil
                        continue
                    }
                    switch redirect {
                    case .moved(let slot, let master):
                        slotMap?.move(slot: slot, to: master)
                        asking[i] = nil
                        moved = true
                    case .ask(_, let target):
                        asking[i] = target
                    }
                    redirected.append(i)
                }
            }
            if redirected.isEmpty { return replies }
            // A slot rarely moves alone (resharding, a failover): read the whole map, once per call.
            if moved, !refreshed {
                refreshed = true
                try? refresh()
            }
            pending = redirected.sorted()
        }
        throw RedisError(
            code: .serverError,
            message: "TRYAGAIN more than \(maxRedirects) redirects for slot \(commands[pending[0]].slot): \(replies[pending[0]])"
        )
    }

    /// Closes every connection; the next call opens them again.
    public func disconnect() {
        connections.removeAll()
    }

    /// The masters the link has connections to now.
    public var connectedNodes: [RedisConfiguration.Endpoint] { Array(connections.keys) }

    private func connection(to node: RedisConfiguration.Endpoint) throws(RedisError) -> RedisConnection {
        if let open = connections[node], !open.isBroken { return open }
        var target = configuration
        target.endpoint = node
        let fresh = try RedisConnection(configuration: target)
        connections[node] = fresh
        return fresh
    }

    private func drop(_ node: RedisConfiguration.Endpoint) {
        connections[node] = nil
    }

    private static func host(of node: RedisConfiguration.Endpoint) -> String {
        if case .tcp(let host, _) = node { return host }
        return "127.0.0.1"
    }
}
