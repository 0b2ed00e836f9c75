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

/// Contract section 5: every successful update, and only those, is announced on both channels
/// and in the change feed.
@Suite("Notifications", .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(1)))
struct NotificationTests {
    @Test("a successful update is announced on the all-tasks channel, the task's channel and the change feed")
    func announced() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            let all = RedisClient(configuration: TestRedis.configuration, name: "sub-all")
            try await all.subscribe([space.keys.updates])
            let one = RedisClient(configuration: TestRedis.configuration, name: "sub-one")
            try await one.subscribe([space.keys.updates("t1")])
            try await RunningBridge.with(space) { bridge in
                let patch = #"[{"op":"replace","path":"/percentComplete","value":7}]"#
                try await space.enqueue(task: "t1", patch: #"[{"op":"test","path":"/id","value":"other"}]"#, requestId: "failing")
                try await space.enqueue(task: "t1", patch: patch, requestId: "r1")
                _ = try await space.reply(task: "t1", requestId: "r1")
                for subscriber in [all, one] {
                    let message = try await subscriber.nextMessage()
                    let note = try JSONValue(parsing: message.payload)
                    #expect(note["id"] == "t1")
                    #expect(note["rev"] == 2)
                    #expect(note["requestId"] == "r1")
                    #expect(note["patch"] == (try JSONValue(parsing: patch)))
                    #expect(note["task"]?["percentComplete"] == 7)
                }
                let feed = try await space.run("XRANGE", space.keys.events, "-", "+")
                let entries = feed.array ?? []
                #expect(entries.count == 1)
                let fields = entries.first?.array?[1].pairs ?? []
                let byName = Dictionary(fields.map { (String(decoding: $0.field, as: UTF8.self), String(decoding: $0.value, as: UTF8.self)) }) {
                    a,
                    _ in a
                }
                #expect(byName["id"] == "t1")
                #expect(byName["rev"] == "2")
                #expect(byName["request-id"] == "r1")
                #expect(try JSONValue(parsing: byName["event"] ?? "")["task"]?["percentComplete"] == 7)
            }
        }
    }

    @Test("the change feed is capped")
    func feedCapped() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space, configure: { $0.eventsMaxLength = 10 }) { bridge in
                for k in 0..<300 { try await space.enqueue(task: "t1", patch: "[]", requestId: "r\(k)") }
                _ = try await space.reply(task: "t1", requestId: "r299")
                let length = try await space.run("XLEN", space.keys.events).int ?? 0
                // MAXLEN ~ trims whole nodes (100 entries each by default), so "about 10" is at most a node more.
                #expect(length < 150)
                #expect(try await space.hash("t1")["_rev"] == "301")
            }
        }
    }
}
