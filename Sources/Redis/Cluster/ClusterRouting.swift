//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Where each command of a pipeline goes in a Redis Cluster, read from the command itself.
///
/// A pipeline is cut into units sent whole to one node: a command, or a `MULTI` ... `EXEC`
/// block (which Redis runs on one node, all of it in one slot). Keys are found where the
/// commands this project sends keep them; a command without a key stays with the unit before it.
public enum ClusterRoute: Sendable, Equatable {
    /// The master of this slot.
    case slot(Int)
    /// No key: the node of the unit before it (or any master, for the first).
    case follow
    /// Every master (`SCRIPT LOAD`, `SCRIPT FLUSH`): a script is loaded on each node.
    case everyMaster

    /// One unit of a pipeline: commands `commands` (a command, or `MULTI` through `EXEC`).
    public struct Unit: Sendable, Equatable {
        public var commands: Range<Int>
        public var route: ClusterRoute

        public init(commands: Range<Int>, route: ClusterRoute) {
            self.commands = commands
            self.route = route
        }
    }

    /// Cuts a pipeline into units, in order.
    public static func units(of pipeline: RedisPipeline) -> [Unit] {
        var units: [Unit] = []
        var i = 0
        while i < pipeline.count {
            let route = self.route(of: i, in: pipeline)
            guard Self.name(of: i, in: pipeline) == "MULTI" else {
                units.append(Unit(commands: i..<(i + 1), route: route))
                i += 1
                continue
            }
            // The block's slot is its first keyed command's; Redis refuses a block across slots.
            var end = i + 1
            var blockRoute = ClusterRoute.follow
            while end < pipeline.count {
                let name = Self.name(of: end, in: pipeline)
                end += 1
                if name == "EXEC" || name == "DISCARD" { break }
                if blockRoute == .follow, case .slot = self.route(of: end - 1, in: pipeline) {
                    blockRoute = self.route(of: end - 1, in: pipeline)
                }
            }
            units.append(Unit(commands: i..<end, route: blockRoute))
            i = end
        }
        return units
    }

    /// The route of command `index`.
    public static func route(of index: Int, in pipeline: RedisPipeline) -> ClusterRoute {
        func key(at position: Int) -> ClusterRoute {
            guard let key = pipeline.argument(position, of: index) else { return .follow }
            return .slot(HashSlot.of(key))
        }
        let name = Self.name(of: index, in: pipeline)
        switch name {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard let count = pipeline.argument(2, of: index), Int(String(decoding: count, as: UTF8.self)) ?? 0 > 0 else { return .follow }
            return key(at: 3)
        case "XREAD", "XREADGROUP":
            var k = 1
            while let word = pipeline.argument(k, of: index) {
                if Self.upper(word) == "STREAMS" { return key(at: k + 1) }
                k += 1
            }
            return .follow
        case "XINFO", "XGROUP", "OBJECT", "MEMORY":
            return key(at: 2)
        case "SCRIPT":
            return .everyMaster
        case "PUBLISH", "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "PING", "ECHO", "INFO", "ROLE", "CLUSTER",
            "CLIENT", "CONFIG", "DBSIZE", "TIME", "ASKING", "READONLY", "READWRITE", "AUTH", "HELLO", "SELECT", "COMMAND",
            "DEBUG", "LASTSAVE", "SAVE", "BGSAVE", "BGREWRITEAOF", "SHUTDOWN", "SLOWLOG", "LATENCY", "ACL", "FLUSHALL",
            "FLUSHDB", "SCAN", "KEYS", "RANDOMKEY", "MULTI", "EXEC", "DISCARD", "FUNCTION", "QUIT", "WAIT":
            return .follow
        default:
            // GET, SET, HGETALL, XADD, XACK, XPENDING, XAUTOCLAIM, XTRIM, DEL, SPUBLISH, ...: the key first.
            return key(at: 1)
        }
    }

    static func name(of index: Int, in pipeline: RedisPipeline) -> String {
        guard let name = pipeline.argument(0, of: index) else { return "" }
        return upper(name)
    }

    private static func upper(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }, as: UTF8.self)
    }
}
