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
