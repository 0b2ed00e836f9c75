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
            try await space.run("DEL", space.keys.events)  // The feed holds the creation too; this test counts what updates add.
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

    @Test("a large task is announced by its patch and small properties, not whole; the summary always")
    func largeTaskAnnouncedByWhatChanged() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await space.run("DEL", space.keys.events)  // The feed holds the creation too; this test counts what updates add.
            let one = RedisClient(configuration: TestRedis.configuration, name: "sub-one")
            try await one.subscribe([space.keys.updates("t1")])
            try await RunningBridge.with(space, configure: { $0.wholeTaskMaxBytes = 2000 }) { bridge in
                let text = String(repeating: "x", count: 1500)
                let append =
                    #"[{"op":"add","path":"/messages/-","value":{"type":"INFO","key":"k","localizedText":{"locale":"en-US","message":"\#(text)"}}},{"op":"replace","path":"/percentComplete","value":9}]"#
                try await space.enqueue(task: "t1", patch: append, requestId: "r1")  // the task grows past 2000 bytes
                let small = try JSONValue(parsing: try await one.nextMessage().payload)
                #expect(small["task"] == nil, "a task over --whole-task-max-bytes travels without its body")
                #expect(small["patch"] == (try JSONValue(parsing: append)))
                #expect(small["summary"]?["percentComplete"] == 9 && small["summary"]?["messages"] == nil)
                #expect(small["rev"] == 2 && small["requestId"] == "r1")
                // The change-feed entry follows the notification (the script publishes it first).
                let entry = try await eventually { try await space.run("XRANGE", space.keys.events, "-", "+").array?.first }
                let event = entry?.array?[1].pairs ?? []
                let text0 = event.first { $0.field == Array("event".utf8) }.map { String(decoding: $0.value, as: UTF8.self) } ?? ""
                #expect(text0.utf8.count < 2500, "the change-feed entry holds what changed, not the task")
                #expect(try JSONValue(parsing: text0)["summary"]?["percentComplete"] == 9)
            }
        }
    }

    @Test("the change feed is capped by bytes too: a count from the average entry")
    func feedCappedByBytes() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space, configure: { $0.eventsMaxBytes = 200_000 }) { bridge in
                // Entries of some KB each (the patch, the summary and the task each hold the text).
                let text = String(repeating: "y", count: 2000)
                let patch = #"[{"op":"replace","path":"/progress","value":"\#(text)"}]"#
                for k in 0..<600 { try await space.enqueue(task: "t1", patch: patch, requestId: "r\(k)") }
                _ = try await space.reply(task: "t1", requestId: "r599", timeout: .seconds(30))
                let length = try await space.run("XLEN", space.keys.events).int ?? 0
                let last = try await space.run("XREVRANGE", space.keys.events, "+", "-", "COUNT", "1").array?.first?.array?[1].pairs ?? []
                let entryBytes = last.first { $0.field == Array("event".utf8) }?.value.count ?? 1
                let budget = 200_000 / entryBytes
                // MAXLEN ~ trims whole nodes (100 entries each by default): the budget, at most a node more.
                #expect(entryBytes > 4000 && length >= budget && length < budget + 101, "\(length) entries of \(entryBytes) bytes")
                #expect(try await space.hash("t1")["_rev"] == "601")
            }
        }
    }
}
