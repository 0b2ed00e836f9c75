//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Testing

@testable import Bridge

@Suite("Shards: the names of contract section 7, the producers' rule, and who reads each shard")
struct ShardingTests {
    @Test("with one shard the names are today's; with N the streams carry {s<k>}; task keys and reply keys never change")
    func names() {
        let single = Keys(prefix: "taskstatus").forShard(0, of: 1)
        #expect(single.requests == "taskstatus:requests")
        #expect(single.dead == "taskstatus:requests:dead")
        #expect(single.events == "taskstatus:events")
        let third = Keys(prefix: "taskstatus").forShard(3, of: 16)
        #expect(third.requests == "taskstatus:requests:{s3}")
        #expect(third.dead == "taskstatus:requests:dead:{s3}")
        #expect(third.events == "taskstatus:events:{s3}")
        #expect(third.group == "taskstatus-bridge")
        #expect(third.task("t1") == "taskstatus:task:{t1}")
        #expect(third.reply(taskId: "t1", requestId: "r") == "taskstatus:reply:{t1}:r")
        #expect(Keys(prefix: "taskstatus").updates("t1") == "taskstatus:updates:t1")
        #expect(Keys(prefix: "taskstatus", shardedPubSub: true).updates("t1") == "taskstatus:updates:{t1}")
    }

    /// The vectors docs/contract.md gives producers, from `CLUSTER KEYSLOT` on Redis 7.0.
    @Test(
        "a task's shard is KEYSLOT(task key) mod N",
        arguments: [
            ("t1", 8943), ("task-42", 12369), ("2c9180835d2e5168015d32f890ca1581", 13651), ("a b", 9817), ("é", 10180),
        ]
    )
    func producerRule(id: String, slot: Int) {
        let keys = Keys(prefix: "taskstatus")
        for count in [1, 4, 16] {
            #expect(keys.shard(ofTask: id, count: count) == (count == 1 ? 0 : slot % count))
        }
    }

    @Test("each shard has one reader among the bridges; they share them out, and a bridge that joins takes shards only from the others")
    func owners() {
        let shards = 0..<16
        let two = shards.map { ShardLease.owner(of: $0, among: ["one", "two"]) }
        #expect(Set(two.compactMap { $0 }) == ["one", "two"])
        let three = shards.map { ShardLease.owner(of: $0, among: ["two", "three", "one"]) }
        for name in ["one", "two", "three"] { #expect(three.filter { $0 == name }.count >= 2, "\(name): \(three)") }
        // Rendezvous: a shard moves only to the newcomer, never between the others.
        for k in shards where three[k] != "three" { #expect(three[k] == two[k]) }
        #expect(ShardLease.owner(of: 0, among: []) == nil)
    }
}
