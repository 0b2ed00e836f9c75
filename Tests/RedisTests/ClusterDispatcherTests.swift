//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Redis
import Testing

/// The cluster transport's decisions without a cluster: where each unit goes, what each answer
/// means, and when the slot map is read again.
@Suite("Cluster dispatch and topology, without Redis")
struct ClusterDispatcherTests {
    static let map = try! ClusterSlotMap(parsingSlots: ClusterSlotsTests.reply, fallbackHost: "127.0.0.1")
    static let first = RedisConfiguration.Endpoint.tcp(host: "127.0.0.1", port: 7000)
    static let second = RedisConfiguration.Endpoint.tcp(host: "127.0.0.1", port: 7001)

    /// A key whose slot the first master serves, and one the second serves.
    static func key(on master: RedisConfiguration.Endpoint, _ n: Int = 0) -> String {
        var found: [String] = []
        for k in 0..<10_000 where map.master(of: HashSlot.of("k\(k)")) == master {
            found.append("k\(k)")
            if found.count > n { break }
        }
        return found[n]
    }

    static func replies(_ resp: String) throws -> RedisReplies {
        try RedisReplies(parsing: Array(resp.utf8))
    }

    @Test("each node gets its units in order; a keyless command goes with the unit before it")
    func plan() throws {
        let a = Self.key(on: Self.first)
        let b = Self.key(on: Self.second)
        let pipeline = RedisPipeline([
            RedisCommand("SET", a, "1"), RedisCommand("SET", b, "2"), RedisCommand("PUBLISH", "channel", "x"), RedisCommand("GET", a),
        ])
        var dispatcher = ClusterDispatcher(pipeline: pipeline, units: ClusterRoute.units(of: pipeline))
        let round = try dispatcher.plan(with: Self.map)
        #expect(round.order == [Self.first, Self.second])
        #expect(round.groups[Self.first] == [0, 3])
        #expect(round.groups[Self.second] == [1, 2], "PUBLISH follows the SET before it")
        let pipelines = dispatcher.pipelines(for: round)
        #expect(pipelines.map(\.pipeline.count) == [2, 2])
        #expect(pipelines[0].pipeline.arguments(of: 1).map { String(decoding: $0, as: UTF8.self) } == ["GET", a])
    }

    @Test("answers: done stands; MOVED goes again to the new owner and names the move; ASK goes once to its target after ASKING")
    func redirects() throws {
        let a = Self.key(on: Self.first)
        let b = Self.key(on: Self.first, 1)
        let pipeline = RedisPipeline([RedisCommand("SET", a, "1"), RedisCommand("SET", b, "2")])
        var dispatcher = ClusterDispatcher(pipeline: pipeline, units: ClusterRoute.units(of: pipeline))
        let round = try dispatcher.plan(with: Self.map)
        let slot = HashSlot.of(b)
        let outcome = dispatcher.absorb([try Self.replies("+OK\r\n-MOVED \(slot) 127.0.0.1:7001\r\n")], of: round)
        #expect(outcome.moved.map(\.slot) == [slot])
        #expect(outcome.moved.map(\.master) == [Self.second])
        #expect(!outcome.retry)
        #expect(dispatcher.pending == [1])
        #expect(dispatcher.redirects == 1)

        var moved = Self.map
        moved.move(slot: slot, to: Self.second)
        let again = try dispatcher.plan(with: moved)
        #expect(again.order == [Self.second])
        _ = dispatcher.absorb([try Self.replies("-ASK \(slot) 127.0.0.1:7002\r\n")], of: again)
        let asked = try dispatcher.plan(with: moved)
        #expect(asked.order == [.tcp(host: "127.0.0.1", port: 7002)])
        let sent = dispatcher.pipelines(for: asked)[0].pipeline
        #expect(sent.count == 2)
        #expect(sent.arguments(of: 0).map { String(decoding: $0, as: UTF8.self) } == ["ASKING"])
        // The ASKING's +OK comes first; the command's answer is the unit's.
        _ = dispatcher.absorb([try Self.replies("+OK\r\n+OK\r\n")], of: asked)
        #expect(dispatcher.isDone)
        #expect(dispatcher.replies.all == [.status("OK"), .status("OK")])
    }

    @Test("TRYAGAIN, CLUSTERDOWN, LOADING and MASTERDOWN ask for a retry; any other error stands as the command's answer")
    func verdicts() throws {
        for message in ["TRYAGAIN Multiple keys request during rehashing", "CLUSTERDOWN The cluster is down", "LOADING", "MASTERDOWN"] {
            let reply = try Self.replies("-\(message)\r\n")[0]
            #expect(ClusterDispatcher.verdict(reply, fallbackHost: "h") == .retry, "\(message)")
        }
        #expect(ClusterDispatcher.verdict(try Self.replies("-WRONGTYPE no\r\n")[0], fallbackHost: "h") == .done)
        #expect(ClusterDispatcher.verdict(try Self.replies(":1\r\n")[0], fallbackHost: "h") == .done)
        #expect(
            ClusterDispatcher.verdict(try Self.replies("-MOVED 7 :7001\r\n")[0], fallbackHost: "10.0.0.9")
                == .redirect(.moved(slot: 7, to: .tcp(host: "10.0.0.9", port: 7001)))
        )
    }

    @Test("the map is read on first use, when stale, and every interval; masters are asked before seeds; an empty map is refused")
    func topology() throws {
        let seed = RedisConfiguration.Endpoint.tcp(host: "seed", port: 6379)
        var topology = ClusterTopology(seeds: [seed, Self.first])
        #expect(topology.needsRefresh())
        #expect(topology.candidates == [seed, Self.first])
        let start = ContinuousClock.now
        try topology.accept(Self.map, at: start)
        #expect(!topology.needsRefresh(at: start + .seconds(1)))
        #expect(topology.needsRefresh(at: start + topology.refreshInterval + .seconds(1)))
        #expect(topology.candidates == Self.map.masters + [seed], "the known masters first, each once")
        topology.markStale()
        #expect(topology.needsRefresh(at: start))
        #expect(throws: RedisError.self) { try topology.accept(ClusterSlotMap(ranges: []), at: start) }
        #expect(topology.slotMap == Self.map, "a refused map leaves the old one")
        #expect(topology.node(Self.second).slot == 5461, "a node carries a slot it serves, for keys that must land there")
    }
}
