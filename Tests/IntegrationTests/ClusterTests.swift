//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import Redis
import Testing

/// The loopback cluster scripts/test starts (three masters, three replicas).
enum TestCluster {
    static let seeds: [SentinelConfiguration.Node] = {
        guard let list = ProcessInfo.processInfo.environment["TASKSTATUS_TEST_CLUSTER"] else { return [] }
        return (try? SentinelConfiguration.nodes(parsing: list)) ?? []
    }()
    static var isAvailable: Bool { !seeds.isEmpty }
    /// The TLS-only cluster scripts/test runs beside the plain one (``TestTLS``'s certificates).
    static let tlsSeeds: [SentinelConfiguration.Node] = {
        guard let list = ProcessInfo.processInfo.environment["TASKSTATUS_TEST_TLS_CLUSTER"] else { return [] }
        return (try? SentinelConfiguration.nodes(parsing: list)) ?? []
    }()
    static var isTLSAvailable: Bool { !tlsSeeds.isEmpty && TestTLS.isAvailable }

    static func client(_ endpoint: RedisConfiguration.Endpoint) -> RedisClient {
        RedisClient(configuration: RedisConfiguration(endpoint: endpoint), name: "cluster-test")
    }
}

@Suite("Redis Cluster: slots and redirects against a real cluster")
struct ClusterTests {
    @Test(
        "the slot map from CLUSTER SLOTS covers every slot on three masters; our slots are the cluster's; a key sent to another master is MOVED to the mapped one",
        .enabled(if: TestCluster.isAvailable, "scripts/test starts the loopback cluster (TASKSTATUS_TEST_CLUSTER)")
    )
    func slotsAndRedirects() async throws {
        let seed = TestCluster.seeds[0]
        let reply = try await TestCluster.client(.tcp(host: seed.host, port: seed.port)).execute(RedisCommand("CLUSTER", "SLOTS"))
        let map = try ClusterSlotMap(parsingSlots: reply, fallbackHost: seed.host)
        #expect(map.coveredSlots == HashSlot.count)
        #expect(map.masters.count == 3)
        #expect(map.ranges.count == 3)

        let seedClient = TestCluster.client(.tcp(host: seed.host, port: seed.port))
        for n in 0..<40 {
            let key = n % 2 == 0 ? "taskstatus:task:{cluster-\(n)}" : "plain-key-\(n)"
            let slot = HashSlot.of(key)
            #expect(try await seedClient.execute(RedisCommand("CLUSTER", "KEYSLOT", key)).int == Int64(slot), "\(key)")
            let owner = try #require(map.master(of: slot))
            #expect(try await TestCluster.client(owner).execute(RedisCommand("SET", key, "\(n)")).string == "OK")
            let other = try #require(map.masters.first { $0 != owner })
            do {
                let answer = try await TestCluster.client(other).execute(RedisCommand("GET", key))
                Issue.record("\(other) answered GET \(key) with \(answer) instead of MOVED")
            } catch {
                #expect(ClusterRedirect(errorMessage: error.message, fallbackHost: seed.host) == .moved(slot: slot, to: owner), "\(error.message)")
            }
        }
    }

    @Test(
        "ClusterTransport: a pipeline over many slots goes out per master and comes back in order; a moved slot (MOVED) and a migrating one (ASK) are followed",
        .enabled(if: TestCluster.isAvailable, "scripts/test starts the loopback cluster (TASKSTATUS_TEST_CLUSTER)")
    )
    func clusterTransport() throws {
        // Blocking calls on the test's own thread, as the transport's users make them.
        let seeds = TestCluster.seeds.map { RedisConfiguration.Endpoint.tcp(host: $0.host, port: $0.port) }
        let run = "\(UInt32.random(in: 0...UInt32.max))"
        var problems: [String] = []
        let link = ClusterTransport(seeds: seeds, configuration: RedisConfiguration(endpoint: seeds[0]), losses: ConnectionLosses())
        // 300 keys over many slots, set and read back in one call.
        var commands: [(command: RedisCommand, slot: Int)] = []
        for n in 0..<300 {
            let key = "cl:\(run):{task-\(n)}"
            commands.append((RedisCommand("SET", key, "v\(n)"), HashSlot.of(key)))
            commands.append((RedisCommand("GET", key), HashSlot.of(key)))
        }
        let replies = try link.execute(commands)
        for n in 0..<300 where replies[2 * n] != .status("OK") || replies[2 * n + 1].string != "v\(n)" {
            problems.append("key \(n): \(replies[2 * n]), \(replies[2 * n + 1])")
        }
        if link.connectedNodes.count != 3 { problems.append("connections to \(link.connectedNodes.count) nodes, not the 3 masters") }
        let map = try #require(link.slotMap)

        // Two empty slots of the first master, and the ids of the first two masters.
        let (first, second) = (map.masters[0], map.masters[1])
        func node(_ endpoint: RedisConfiguration.Endpoint) throws(RedisError) -> RedisConnection {
            try RedisConnection(configuration: RedisConfiguration(endpoint: endpoint))
        }
        let firstNode = try node(first)
        let secondNode = try node(second)
        let firstId = try firstNode.execute([RedisCommand("CLUSTER", "MYID")])[0].get().string ?? ""
        let secondId = try secondNode.execute([RedisCommand("CLUSTER", "MYID")])[0].get().string ?? ""
        var empty: [(key: String, slot: Int)] = []
        for n in 0..<10_000 where empty.count < 2 {
            let key = "cl:\(run):{move-\(n)}"
            let slot = HashSlot.of(key)
            guard map.master(of: slot) == first, !empty.contains(where: { $0.slot == slot }) else { continue }
            if try firstNode.execute([RedisCommand("CLUSTER", "COUNTKEYSINSLOT", "\(slot)")])[0].int == 0 { empty.append((key, slot)) }
        }
        let (moved, migrating) = (empty[0], empty[1])

        // MOVED: the slot now belongs to the second master; the link still thinks the first.
        for target in [firstNode, secondNode] {
            _ = try target.execute([RedisCommand("CLUSTER", "SETSLOT", "\(moved.slot)", "NODE", secondId)])[0].get()
        }
        let afterMove = try link.execute([(RedisCommand("SET", moved.key, "moved"), HashSlot.of(moved.key))])
        if afterMove != [.status("OK")] { problems.append("SET after MOVED answered \(afterMove)") }
        if try secondNode.execute([RedisCommand("GET", moved.key)])[0].string != "moved" {
            problems.append("the moved key is not on the new master")
        }
        if link.slotMap?.master(of: moved.slot) != second { problems.append("the map did not learn the move") }

        // ASK: the slot is migrating from the first master to the second; a key the first does
        // not have is asked for on the second, and the map stays as it was.
        _ = try secondNode.execute([RedisCommand("CLUSTER", "SETSLOT", "\(migrating.slot)", "IMPORTING", firstId)])[0].get()
        _ = try firstNode.execute([RedisCommand("CLUSTER", "SETSLOT", "\(migrating.slot)", "MIGRATING", secondId)])[0].get()
        let duringMigration = try link.execute([(RedisCommand("SET", migrating.key, "asked"), HashSlot.of(migrating.key))])
        if duringMigration != [.status("OK")] { problems.append("SET during migration answered \(duringMigration)") }
        if link.slotMap?.master(of: migrating.slot) != first { problems.append("ASK changed the map") }
        // Finish the migration, as redis-cli --cluster reshard would, and read through MOVED.
        for target in [secondNode, firstNode] {
            _ = try target.execute([RedisCommand("CLUSTER", "SETSLOT", "\(migrating.slot)", "NODE", secondId)])[0].get()
        }
        let read = try link.execute([(RedisCommand("GET", migrating.key), HashSlot.of(migrating.key))])
        if read != [.bulk(Array("asked".utf8))] { problems.append("GET after the migration answered \(read)") }

        // Give the slots back, so that the cluster is as scripts/test made it.
        for slot in [moved.slot, migrating.slot] {
            _ = try secondNode.execute([RedisCommand("DEL", slot == moved.slot ? moved.key : migrating.key)])
            for target in [secondNode, firstNode] {
                _ = try target.execute([RedisCommand("CLUSTER", "SETSLOT", "\(slot)", "NODE", firstId)])[0].get()
            }
        }
        #expect(problems.isEmpty, "\(problems)")
    }
}
