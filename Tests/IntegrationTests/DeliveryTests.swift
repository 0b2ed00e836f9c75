//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import JSONPatch
import Redis
import Testing

/// Contract section 6: delivery guarantees, and the bridge's upkeep of the stream.
@Suite("Delivery guarantees", .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(2)))
struct DeliveryTests {
    /// Makes `consumer` hold the entry as if it had been delivered `deliveries` times.
    private func holdPending(_ space: TestSpace, entryId: String, consumer: String, deliveries: Int) async throws {
        try await space.run("XGROUP", "CREATE", space.keys.requests, space.keys.group, "0", "MKSTREAM")
        try await space.run("XREADGROUP", "GROUP", space.keys.group, consumer, "COUNT", 100, "STREAMS", space.keys.requests, ">")
        try await space.run("XCLAIM", space.keys.requests, space.keys.group, consumer, 0, entryId, "RETRYCOUNT", deliveries)
    }

    @Test("entries left pending by a dead consumer are claimed after the idle time and processed")
    func claimsAbandoned() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            let entry = try await space.enqueue(task: "t1", patch: #"[{"op":"replace","path":"/progress","value":"claimed"}]"#, requestId: "r")
            try await holdPending(space, entryId: entry, consumer: "dead-one", deliveries: 1)
            try await RunningBridge.with(space) { bridge in
                let reply = try await space.reply(task: "t1", requestId: "r")
                #expect(reply["status"] == 200)
                let pending = try await eventually { () async throws -> Bool? in
                    let summary = try await space.run("XPENDING", space.keys.requests, space.keys.group)
                    return summary.array?.first == .integer(0) ? true : nil
                }
                #expect(pending == true)
            }
        }
    }

    @Test("an entry delivered too often goes to the dead-letter stream with its reason, is answered 500 and acknowledged")
    func deadLetters() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            let entry = try await space.enqueue(task: "t1", patch: "[]", requestId: "poison", extra: [("reply-to", "\(space.prefix):r")])
            try await holdPending(space, entryId: entry, consumer: "crashed", deliveries: 5)
            let subscriber = RedisClient(configuration: TestRedis.configuration, name: "sub")
            try await subscriber.subscribe(["\(space.prefix):r"])
            try await RunningBridge.with(space) { bridge in
                let published = try JSONValue(parsing: try await subscriber.nextMessage().payload)
                #expect(published["status"] == 500)
                let reply = try await space.reply(task: "t1", requestId: "poison")
                #expect(reply == published)
                #expect(reply["body"]?["causes"]?.arrayValue?.first?["text"]?.stringValue?.contains("dead-letter") == true)
                let dead = try await space.run("XRANGE", space.keys.dead, "-", "+").array ?? []
                #expect(dead.count == 1)
                let fields = Dictionary(
                    (dead.first?.array?[1].pairs ?? []).map { (String(decoding: $0.field, as: UTF8.self), String(decoding: $0.value, as: UTF8.self)) }
                ) { a, _ in a }
                #expect(fields["id"] == "t1")
                #expect(fields["request-id"] == "poison")
                #expect(fields["dead-entry-id"] == entry)
                #expect(fields["dead-deliveries"] == "5")
                #expect(fields["dead-reason"]?.contains("delivered 5 times") == true)
                #expect(try await space.run("XPENDING", space.keys.requests, space.keys.group).array?.first == .integer(0))
                #expect(try await space.hash("t1")["_rev"] == "1")
            }
        }
    }

    @Test("replayed dead letters are applied once, keep their request ids, and leave the dead-letter stream")
    func replayDeadLetters() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            let patch = #"[{"op":"replace","path":"/progress","value":"replayed"}]"#
            let named = try await space.enqueue(task: "t1", patch: patch, requestId: "named")
            let unnamed = try await space.enqueue([
                ("id", "t1"), ("patch", #"[{"op":"replace","path":"/percentComplete","value":7}]"#), ("x-sailpoint-experimental", "true"),
            ])
            try await holdPending(space, entryId: named, consumer: "crashed", deliveries: 5)
            try await space.run("XCLAIM", space.keys.requests, space.keys.group, "crashed", 0, unnamed, "RETRYCOUNT", 5)
            try await RunningBridge.with(space) { _ async throws in
                #expect(try await space.reply(task: "t1", requestId: "named")["status"] == 500)
                #expect(try await space.reply(task: "t1", requestId: unnamed)["status"] == 500)
            }

            let client = TaskStatusClient(configuration: TestRedis.configuration, prefix: space.prefix)
            let letters = try await client.deadLetters(count: 10)
            #expect(letters.map(\.requestId) == ["named", unnamed])
            #expect(letters.allSatisfy { $0.taskId == "t1" && $0.deliveries == 5 && $0.reason.contains("delivered 5 times") })
            for letter in letters { _ = try await client.replay(letter) }
            #expect(try await client.deadLetters(count: 10).isEmpty)

            try await RunningBridge.with(space) { _ in
                let applied = try await eventually { () async throws -> Bool? in
                    let replies = [try await space.reply(task: "t1", requestId: "named"), try await space.reply(task: "t1", requestId: unnamed)]
                    return replies.allSatisfy { $0["status"] == 200 } ? true : nil
                }
                #expect(applied == true)
                let hash = try await space.hash("t1")
                #expect(hash["progress"] == "replayed")
                #expect(hash["percentComplete"] == "7")
                #expect(hash["_rev"] == "3")
                // Replaying the same request again changes nothing: it is answered from its stored reply.
                try await space.enqueue(task: "t1", patch: patch, requestId: "named")
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await space.hash("t1")["_rev"] == "3")
            }
        }
    }

    @Test("an over-delivered entry whose reply was stored is acknowledged, not dead-lettered")
    func overdeliveredButDone() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            let entry = try await space.enqueue(task: "t1", patch: "[]", requestId: "done")
            let stored = #"{"requestId":"done","taskId":"t1","status":200,"rev":1,"headers":{},"body":{}}"#
            try await space.run("SET", space.keys.reply(taskId: "t1", requestId: "done"), stored)
            try await holdPending(space, entryId: entry, consumer: "crashed", deliveries: 9)
            try await RunningBridge.with(space) { bridge in
                let acked = try await eventually { () async throws -> Bool? in
                    try await space.run("XPENDING", space.keys.requests, space.keys.group).array?.first == .integer(0) ? true : nil
                }
                #expect(acked == true)
                #expect(try await space.run("EXISTS", space.keys.dead) == .integer(0))
            }
        }
    }

    @Test("graceful shutdown finishes and acknowledges what the bridge holds")
    func gracefulShutdown() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            for k in 0..<200 { try await space.enqueue(task: "t1", patch: "[]", requestId: "r\(k)") }
            try await RunningBridge.with(space, configure: { $0.batchSize = 50 }) { _ in
                _ = try await space.reply(task: "t1", requestId: "r0")
            }
            // Whatever was read was answered and acknowledged; nothing is left pending.
            let summary = try await space.run("XPENDING", space.keys.requests, space.keys.group)
            #expect(summary.array?.first == .integer(0))
            let rev = Int(try await space.hash("t1")["_rev"] ?? "0") ?? 0
            var answered = 0
            for k in 0..<200 where try await space.run("EXISTS", space.keys.reply(taskId: "t1", requestId: "r\(k)")) == .integer(1) {
                answered += 1
            }
            #expect(rev == 1 + answered)
        }
    }

    @Test(
        "the group is recreated after Redis lost it, and the script reloaded after SCRIPT FLUSH",
        .enabled(if: PrivateRedis.isAvailable, "redis-server is not on the PATH")
    )
    func recoversLostState() async throws {
        // A server of its own: SCRIPT FLUSH would make the bridges of other tests reload theirs.
        try await TestSpace.withPrivateServer { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                try await space.enqueue(task: "t1", patch: "[]", requestId: "before")
                _ = try await space.reply(task: "t1", requestId: "before")
                try await space.run("SCRIPT", "FLUSH")
                try await space.enqueue(task: "t1", patch: "[]", requestId: "after-flush")
                #expect(try await space.reply(task: "t1", requestId: "after-flush")["status"] == 200)
                try await space.run("XGROUP", "DESTROY", space.keys.requests, space.keys.group)
                try await space.enqueue(task: "t1", patch: "[]", requestId: "after-destroy")
                #expect(try await space.reply(task: "t1", requestId: "after-destroy")["rev"] == 4)
            }
        }
    }

    @Test("acknowledged entries are trimmed, never past one still pending")
    func trims() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            let held = try await space.enqueue(task: "t1", patch: "[]", requestId: "held")
            try await holdPending(space, entryId: held, consumer: "slow-but-alive", deliveries: 1)
            for k in 0..<300 { try await space.enqueue(task: "t1", patch: "[]", requestId: "r\(k)") }
            try await RunningBridge.with(space, configure: { $0.claimIdle = .seconds(3600) }) { bridge in
                _ = try await space.reply(task: "t1", requestId: "r299")
                // The held entry is first in the stream and still pending, so nothing can go yet.
                try await Task.sleep(for: .milliseconds(600))
                #expect(try await space.run("XLEN", space.keys.requests) == .integer(301))
                try await space.run("XACK", space.keys.requests, space.keys.group, held)
                let trimmed = try await eventually { () async throws -> Bool? in
                    (try await space.run("XLEN", space.keys.requests).int ?? 301) < 301 ? true : nil
                }
                #expect(trimmed == true)
            }
        }
    }

    @Test("consumers that died with nothing pending are removed after a while")
    func removesDeadConsumers() async throws {
        try await TestSpace.with { space in
            try await space.run("XGROUP", "CREATE", space.keys.requests, space.keys.group, "0", "MKSTREAM")
            try await space.run("XGROUP", "CREATECONSUMER", space.keys.requests, space.keys.group, "long-gone")
            try await RunningBridge.with(space, configure: { $0.deadConsumerIdle = .milliseconds(300) }) { bridge in
                let removed = try await eventually { () async throws -> Bool? in
                    let consumers = try await space.run("XINFO", "CONSUMERS", space.keys.requests, space.keys.group).array ?? []
                    let names = consumers.compactMap { $0.array?[1].string }
                    return names.contains("long-gone") ? nil : true
                }
                #expect(removed == true)
            }
        }
    }
}
