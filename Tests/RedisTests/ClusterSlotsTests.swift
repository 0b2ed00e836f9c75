//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Redis
import Testing

@Suite("Cluster slot map and redirects")
struct ClusterSlotsTests {
    static func node(_ host: String, _ port: Int64, _ id: String) -> RedisReply {
        .array([.bulk(Array(host.utf8)), .integer(port), .bulk(Array(id.utf8)), .array([])])
    }

    /// Three masters with a replica each, as `CLUSTER SLOTS` on Redis 7.0 answers for
    /// `redis-cli --cluster create` (ranges not in slot order; the last master announced without
    /// an address).
    static let reply = RedisReply.array([
        .array([.integer(5461), .integer(10922), node("127.0.0.1", 7001, "b"), node("127.0.0.1", 7004, "e")]),
        .array([.integer(0), .integer(5460), node("127.0.0.1", 7000, "a"), node("127.0.0.1", 7005, "f")]),
        .array([.integer(10923), .integer(16383), node("", 7002, "c"), node("127.0.0.1", 7003, "d")]),
    ])

    @Test("CLUSTER SLOTS becomes sorted ranges; every slot finds its master; an unknown address is the answering node's host")
    func parse() throws {
        let map = try ClusterSlotMap(parsingSlots: Self.reply, fallbackHost: "127.0.0.2")
        #expect(map.coveredSlots == HashSlot.count)
        #expect(map.ranges.map(\.slots) == [0...5460, 5461...10922, 10923...16383])
        #expect(map.masters == [.tcp(host: "127.0.0.1", port: 7000), .tcp(host: "127.0.0.1", port: 7001), .tcp(host: "127.0.0.2", port: 7002)])
        #expect(map.ranges[0].replicas == [.tcp(host: "127.0.0.1", port: 7005)])
        for (slot, port) in [(0, 7000), (5460, 7000), (5461, 7001), (10922, 7001), (10923, 7002), (16383, 7002)] {
            #expect(map.master(of: slot)?.port == port, "slot \(slot)")
        }
        let partial = ClusterSlotMap(ranges: [map.ranges[0]])
        #expect(partial.master(of: 5461) == nil)
        #expect(partial.coveredSlots == 5461)
    }

    @Test("malformed or overlapping answers are refused with what was wrong")
    func malformed() {
        for bad: RedisReply in [
            .status("OK"), .array([.array([.integer(0)])]), .array([.array([.integer(0), .integer(16384), Self.node("h", 1, "a")])]),
            .array([.array([.integer(0), .integer(5), .array([.bulk(Array("h".utf8)), .integer(0)])])]),
            .array([.array([.integer(0), .integer(10), Self.node("h", 1, "a")]), .array([.integer(10), .integer(20), Self.node("h", 2, "b")])]),
        ] {
            #expect(throws: RedisError.self, "\(bad)") { try ClusterSlotMap(parsingSlots: bad, fallbackHost: "h") }
        }
    }

    @Test("MOVED splits the range it lands in; the rest keeps its master")
    func moved() throws {
        var map = try ClusterSlotMap(parsingSlots: Self.reply, fallbackHost: "127.0.0.1")
        map.move(slot: 100, to: .tcp(host: "127.0.0.1", port: 7001))
        #expect(map.ranges.map(\.slots) == [0...99, 100...100, 101...5460, 5461...10922, 10923...16383])
        #expect(map.master(of: 100)?.port == 7001)
        #expect(map.master(of: 99)?.port == 7000)
        #expect(map.master(of: 101)?.port == 7000)
        #expect(map.coveredSlots == HashSlot.count)
        map.move(slot: 0, to: .tcp(host: "127.0.0.1", port: 7002))
        #expect(map.ranges.first?.slots == 0...0)
        #expect(map.master(of: 0)?.port == 7002)
        let before = map
        map.move(slot: 5000, to: .tcp(host: "127.0.0.1", port: 7000))
        #expect(map == before, "a MOVED to the master it already has changes nothing")
    }

    @Test(
        "redirects are read from error replies; anything else is not one",
        arguments: [
            ("MOVED 3999 127.0.0.1:6381", ClusterRedirect.moved(slot: 3999, to: .tcp(host: "127.0.0.1", port: 6381))),
            ("ASK 3999 127.0.0.1:6381", .ask(slot: 3999, to: .tcp(host: "127.0.0.1", port: 6381))),
            ("MOVED 0 :7000", .moved(slot: 0, to: .tcp(host: "10.0.0.9", port: 7000))),
            ("MOVED 16383 [::1]:7000", .moved(slot: 16383, to: .tcp(host: "::1", port: 7000))),
            ("MOVED 16384 127.0.0.1:7000", nil), ("MOVED x 127.0.0.1:7000", nil), ("ASK 1 127.0.0.1", nil), ("TRYAGAIN Multiple keys", nil),
            ("CLUSTERDOWN The cluster is down", nil), ("ERR unknown command", nil), ("MOVED 1 127.0.0.1:0", nil),
        ] as [(String, ClusterRedirect?)]
    )
    func redirects(message: String, redirect: ClusterRedirect?) {
        #expect(ClusterRedirect(errorMessage: message, fallbackHost: "10.0.0.9") == redirect)
    }
}

extension RedisConfiguration.Endpoint {
    fileprivate var port: Int? {
        if case .tcp(_, let port) = self { return port }
        return nil
    }
}
