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
}
