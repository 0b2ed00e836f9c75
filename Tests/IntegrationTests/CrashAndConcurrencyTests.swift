//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import Foundation
import JSONPatch
import Redis
import Testing

@Suite("Crashes and concurrent writers", .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(3)))
struct CrashAndConcurrencyTests {
    /// Counts, per task, the requests answered 200, and checks every request has a stored reply.
    private func successes(_ space: TestSpace, requests: [(task: String, id: String)]) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for request in requests {
            let reply = try await space.reply(task: request.task, requestId: request.id, timeout: .seconds(60))
            if reply["status"] == 200 { counts[request.task, default: 0] += 1 }
        }
        return counts
    }

    private func messageKeys(_ space: TestSpace, task: String) async throws -> [String] {
        let messages = try JSONValue(parsing: try await space.hash(task)["messages"] ?? "[]")
        return (messages.arrayValue ?? []).compactMap { $0["key"]?.stringValue }
    }

    @Test(
        "a bridge killed mid-batch: a second one takes over, every request is answered and applied exactly once",
        .enabled(if: BridgeProcess.isAvailable, "the task-status-bridge executable is not built")
    )
    func crashTakeover() async throws {
        try await TestSpace.with { space in
            let tasks = (0..<4).map { "t\($0)" }
            for task in tasks { try await space.putTask(task) }
            var requests: [(task: String, id: String)] = []
            for k in 0..<400 {
                let task = tasks[k % tasks.count]
                let patch =
                    #"[{"op":"add","path":"/messages/-","value":{"type":"INFO","key":"m\#(k)"}},{"op":"replace","path":"/progress","value":"step \#(k)"}]"#
                try await space.enqueue(task: task, patch: patch, requestId: "r\(k)")
                requests.append((task, "r\(k)"))
            }
            let first = try BridgeProcess.serve(space, consumer: "first", extra: ["--batch-size", "4"])
            _ = try await space.reply(task: "t0", requestId: "r40", timeout: .seconds(30))
            first.kill(SIGKILL)
            _ = await first.waitForExit()
            let second = try BridgeProcess.serve(space, consumer: "second", extra: ["--batch-size", "16"])
            let counts = try await successes(space, requests: requests)
            for task in tasks {
                let hash = try await space.hash(task)
                #expect(Int(hash["_rev"] ?? "") == 1 + (counts[task] ?? 0), "\(task)")
                let keys = try await messageKeys(space, task: task)
                #expect(keys.count == Set(keys).count, "a message was applied twice to \(task)")
                #expect(keys.count == counts[task] ?? 0)
            }
            second.kill(SIGTERM)
            #expect(await second.waitForExit() == 0, "\(second.output)")
        }
    }

    @Test(
        "one request at a time, each commit answered while the consumer waits for the next: when a writer moved the task meanwhile, the request is decided again before the next one, answered and announced once"
    )
    func commitInFlightDecidedAgain() async throws {
        try await TestSpace.with { space in
            try await space.putTask("f")
            try await space.run("DEL", space.keys.events)
            try await RunningBridge.with(space) { _ in
                let count = 12
                for k in 0..<count {
                    if k % 2 == 1 {
                        // Another writer moves _rev after the bridge cached the task: the commit
                        // sent for this request finds another revision, and Redis makes nothing of it.
                        _ = try await space.run("HINCRBY", space.keys.task("f"), "_rev", 1)
                    }
                    try await space.enqueue(
                        task: "f",
                        patch: #"[{"op":"add","path":"/messages/-","value":{"type":"INFO","key":"m\#(k)"}}]"#,
                        requestId: "r\(k)"
                    )
                    let reply = try await space.reply(task: "f", requestId: "r\(k)")
                    #expect(reply["status"] == 200, "r\(k): \(reply)")
                }
                let keys = try await messageKeys(space, task: "f")
                #expect(keys == (0..<count).map { "m\($0)" }, "each append once, in order")
                #expect(Int(try await space.hash("f")["_rev"] ?? "") == 1 + count + count / 2)
                let feed = try await eventually { () async throws -> [RedisReply]? in
                    let entries = try await space.run("XRANGE", space.keys.events, "-", "+").array ?? []
                    return entries.count >= count ? entries : nil
                }
                let ids = (feed ?? []).compactMap { entry in
                    entry.array?[1].pairs?.first { $0.field == Array("request-id".utf8) }.map { String(decoding: $0.value, as: UTF8.self) }
                }
                #expect(ids == (0..<count).map { "r\($0)" }, "one change-feed entry per request, in order")
                let pending = try await space.run("XPENDING", space.keys.requests, space.keys.group)
                #expect(pending.array?.first?.int == 0, "every entry acknowledged")
            }
        }
    }

    @Test("two bridges and a direct writer on the same tasks: no update is lost")
    func concurrentWriters() async throws {
        try await TestSpace.with { space in
            let tasks = ["a", "b", "c"]
            for task in tasks { try await space.putTask(task) }
            try await RunningBridge.with(space, consumer: "one", configure: { $0.batchSize = 8 }) { _ in
                try await RunningBridge.with(space, consumer: "two", configure: { $0.batchSize = 8 }) { two in
                    // Another service that writes the same hashes and moves _rev, as the contract asks.
                    let writer = Task {
                        let redis = RedisClient(configuration: TestRedis.configuration, name: "writer")
                        let script = "redis.call('HSET', KEYS[1], 'launcher', ARGV[1]); return redis.call('HINCRBY', KEYS[1], '_rev', 1)"
                        var writes: [String: Int] = [:]
                        for k in 0..<150 {
                            let task = tasks[k % tasks.count]
                            _ = try await redis.execute(RedisCommand("EVAL", script, 1, space.keys.task(task), "writer-\(k)"))
                            writes[task, default: 0] += 1
                            try await Task.sleep(for: .milliseconds(2))
                        }
                        return writes
                    }
                    var requests: [(task: String, id: String)] = []
                    for k in 0..<600 {
                        let task = tasks[k % tasks.count]
                        try await space.enqueue(
                            task: task,
                            patch: #"[{"op":"add","path":"/messages/-","value":{"type":"INFO","key":"m\#(k)"}}]"#,
                            requestId: "r\(k)"
                        )
                        requests.append((task, "r\(k)"))
                    }
                    let writes = try await writer.value
                    let counts = try await successes(space, requests: requests)
                    for task in tasks {
                        #expect(counts[task] == 200)
                        let keys = try await messageKeys(space, task: task)
                        #expect(Set(keys).count == 200, "updates lost on \(task)")
                        #expect(Int(try await space.hash(task)["_rev"] ?? "") == 1 + 200 + (writes[task] ?? 0))
                    }
                }
            }
        }
    }
}
