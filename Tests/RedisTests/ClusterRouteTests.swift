//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Redis
import Testing

@Suite("Cluster routing: where each command of a pipeline goes, without Redis")
struct ClusterRouteTests {
    @Test("a command goes by its key, wherever the command keeps it; a keyless one follows the unit before it")
    func keys() {
        let pipeline = RedisPipeline([
            RedisCommand("HGETALL", "p:task:{t1}"),
            RedisCommand("EVALSHA", "abc", 2, "p:task:{t2}", "p:reply:{t2}:r"),
            RedisCommand("EVALSHA", "abc", 0, "x"),
            RedisCommand("XREADGROUP", "GROUP", "g", "c", "COUNT", 10, "streams", "p:requests:{s3}", ">"),
            RedisCommand("XINFO", "GROUPS", "p:requests:{s4}"),
            RedisCommand("PUBLISH", "p:updates", "x"),
            RedisCommand("SPUBLISH", "p:updates:{t5}", "x"),
            RedisCommand("SCRIPT", "LOAD", "return 1"),
            RedisCommand("WAIT", 1, 100),
        ])
        let units = ClusterRoute.units(of: pipeline)
        #expect(
            units.map(\.route) == [
                .slot(HashSlot.of("t1")), .slot(HashSlot.of("t2")), .follow, .slot(HashSlot.of("s3")), .slot(HashSlot.of("s4")), .follow,
                .slot(HashSlot.of("t5")), .everyMaster, .follow,
            ]
        )
        #expect(units.map(\.commands) == (0..<9).map { $0..<($0 + 1) })
    }

    @Test("a MULTI ... EXEC block is one unit, in the slot of its first keyed command")
    func transactions() {
        let pipeline = RedisPipeline([
            RedisCommand("GET", "a"),
            RedisCommand("MULTI"),
            RedisCommand("PUBLISH", "chan", "x"),
            RedisCommand("XADD", "p:events:{s1}", "*", "f", "v"),
            RedisCommand("XACK", "p:requests:{s1}", "g", "1-1"),
            RedisCommand("EXEC"),
            RedisCommand("GET", "b"),
        ])
        let units = ClusterRoute.units(of: pipeline)
        #expect(units.map(\.commands) == [0..<1, 1..<6, 6..<7])
        #expect(units.map(\.route) == [.slot(HashSlot.of("a")), .slot(HashSlot.of("s1")), .slot(HashSlot.of("b"))])
    }

    @Test("replies gathered from several round trips keep every value, nested ones too, in the order asked")
    func assembling() throws {
        let first = try RedisReplies(parsing: Array("+OK\r\n*2\r\n$3\r\nabc\r\n:7\r\n".utf8))
        let second = try RedisReplies(parsing: Array("-ERR no\r\n$-1\r\n".utf8))
        let joined = RedisReplies(assembling: [second[1], first[1], second[0], first[0]])
        #expect(joined.all == [.null, .array([.bulk(Array("abc".utf8)), .integer(7)]), .error("ERR no"), .status("OK")])
    }

    @Test("every slot has a short tag of its own")
    func tags() {
        for slot in [0, 1, 8943, 16383] { #expect(HashSlot.of("m:{\(HashSlot.tag(forSlot: slot))}") == slot) }
    }
}
