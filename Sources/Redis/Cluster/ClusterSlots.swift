//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Which master serves each slot of a Redis Cluster, as `CLUSTER SLOTS` tells it.
public struct ClusterSlotMap: Sendable, Equatable {
    public struct Range: Sendable, Equatable {
        public var slots: ClosedRange<Int>
        public var master: RedisConfiguration.Endpoint
        public var replicas: [RedisConfiguration.Endpoint]
    }

    /// Sorted by their first slot, without overlaps.
    public private(set) var ranges: [Range]

    public init(ranges: [Range]) {
        self.ranges = ranges.sorted { $0.slots.lowerBound < $1.slots.lowerBound }
    }

    /// Reads a `CLUSTER SLOTS` reply: `[start, end, [host, port, id, ...], [replica host, port, ...]...]`
    /// per range. A node announced without an address (`""` or `?`, Redis 7's "unknown endpoint")
    /// is reached at `fallbackHost`, the host of the node that answered, as Redis documents.
    public init(parsingSlots reply: RedisReply, fallbackHost: String) throws(RedisError) {
        guard let entries = reply.array else { throw Self.malformed("not an array: \(reply)") }
        var ranges: [Range] = []
        for entry in entries {
            guard let parts = entry.array, parts.count >= 3, let start = parts[0].int, let end = parts[1].int,
                (0..<Int64(HashSlot.count)).contains(start), (start...Int64(HashSlot.count - 1)).contains(end)
            else { throw Self.malformed("a range that is not [start, end, master, ...]: \(entry)") }
            var nodes: [RedisConfiguration.Endpoint] = []
            for node in parts[2...] {
                guard let fields = node.array, fields.count >= 2, let host = fields[0].string, let port = fields[1].int,
                    (1...65535).contains(port)
                else { throw Self.malformed("a node that is not [host, port, ...]: \(node)") }
                nodes.append(.tcp(host: host.isEmpty || host == "?" ? fallbackHost : host, port: Int(port)))
            }
            ranges.append(Range(slots: Int(start)...Int(end), master: nodes[0], replicas: Array(nodes.dropFirst())))
        }
        self.init(ranges: ranges)
        for k in self.ranges.indices.dropFirst() where self.ranges[k].slots.lowerBound <= self.ranges[k - 1].slots.upperBound {
            throw Self.malformed("ranges \(self.ranges[k - 1].slots) and \(self.ranges[k].slots) overlap")
        }
    }

    /// The master serving `slot`, or nil when no node serves it (the cluster is not fully covered).
    public func master(of slot: Int) -> RedisConfiguration.Endpoint? {
        var low = 0
        var high = ranges.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let range = ranges[middle].slots
            if slot < range.lowerBound {
                high = middle - 1
            } else if slot > range.upperBound {
                low = middle + 1
            } else {
                return ranges[middle].master
            }
        }
        return nil
    }

    /// Every master, once each, in slot order.
    public var masters: [RedisConfiguration.Endpoint] {
        var seen: Set<RedisConfiguration.Endpoint> = []
        return ranges.map(\.master).filter { seen.insert($0).inserted }
    }

    /// How many of the 16384 slots some master serves.
    public var coveredSlots: Int { ranges.reduce(0) { $0 + $1.slots.count } }

    /// `MOVED` names the slot's new master: the map learns it without asking the cluster again.
    public mutating func move(slot: Int, to master: RedisConfiguration.Endpoint) {
        guard let k = ranges.firstIndex(where: { $0.slots.contains(slot) }) else {
            ranges.append(Range(slots: slot...slot, master: master, replicas: []))
            ranges.sort { $0.slots.lowerBound < $1.slots.lowerBound }
            return
        }
        let old = ranges[k]
        guard old.master != master else { return }
        var pieces: [Range] = []
        if old.slots.lowerBound < slot { pieces.append(Range(slots: old.slots.lowerBound...(slot - 1), master: old.master, replicas: old.replicas)) }
        pieces.append(Range(slots: slot...slot, master: master, replicas: []))
        if slot < old.slots.upperBound { pieces.append(Range(slots: (slot + 1)...old.slots.upperBound, master: old.master, replicas: old.replicas)) }
        ranges.replaceSubrange(k...k, with: pieces)
    }

    private static func malformed(_ detail: String) -> RedisError {
        RedisError(code: .unexpectedReply, message: "CLUSTER SLOTS answered something unexpected: \(detail)")
    }
}

/// A cluster's answer that the command belongs elsewhere.
public enum ClusterRedirect: Sendable, Equatable {
    /// `MOVED <slot> <host>:<port>`: the slot now lives there, for good; update the map and retry.
    case moved(slot: Int, to: RedisConfiguration.Endpoint)
    /// `ASK <slot> <host>:<port>`: the slot is migrating and this key may already be there; send
    /// `ASKING` and this one command to it, and leave the map alone.
    case ask(slot: Int, to: RedisConfiguration.Endpoint)

    /// Reads an error reply; nil when it is not a redirect. An empty host (a node that does not
    /// know its own address) is `fallbackHost`, the host of the node that answered.
    public init?(errorMessage: String, fallbackHost: String) {
        let words = errorMessage.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count == 3, let slot = Int(words[1]), (0..<HashSlot.count).contains(slot), let colon = words[2].lastIndex(of: ":"),
            let port = Int(words[2][words[2].index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        var host = String(words[2][..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let endpoint = RedisConfiguration.Endpoint.tcp(host: host.isEmpty ? fallbackHost : host, port: port)
        switch words[0] {
        case "MOVED": self = .moved(slot: slot, to: endpoint)
        case "ASK": self = .ask(slot: slot, to: endpoint)
        default: return nil
        }
    }
}
