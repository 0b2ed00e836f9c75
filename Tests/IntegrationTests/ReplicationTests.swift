//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import Foundation
import HTTPAPI
import JSONPatch
import Redis
import Synchronization
import TaskStatus
import Testing

/// Contract section 6: with `--min-replicas`, nothing of a batch becomes visible before that many
/// replicas confirmed its commits.
@Suite("Replicated before visible", .enabled(if: PrivateRedis.isAvailable, "redis-server is not on the PATH"), .timeLimit(.minutes(2)))
struct ReplicationTests {
    /// A master and a replica on loopback, the replica's link up.
    private func withReplicatedServer(_ body: (TestSpace, PrivateRedis) async throws -> Void) async throws {
        let master = try PrivateRedis(tcp: true)
        let replica = try PrivateRedis(["--replicaof", "127.0.0.1", String(master.port)], tcp: true)
        defer { replica.resume() }
        let configuration = try RedisConfiguration(url: master.url)
        let linked = try await eventually(timeout: .seconds(10)) { () async throws -> Bool? in
            let info = try await RedisClient(configuration: configuration, name: "probe").execute(RedisCommand("INFO", "replication")).string ?? ""
            return info.contains("connected_slaves:1") && info.contains("state=online") ? true : nil
        }
        try #require(linked == true, "the replica did not come up")
        do {
            try await TestSpace.with(on: configuration) { space in try await body(space, replica) }
            await replica.stop()
            await master.stop()
        } catch {
            await replica.stop()
            await master.stop()
            throw error
        }
    }

    /// Collects what is published on `channels` from now on, on a connection of its own.
    final class Listener: Sendable {
        private final class Inbox: Sendable {
            let messages = Mutex<[(channel: String, payload: [UInt8])]>([])
        }
        private let inbox = Inbox()
        private let task: Task<Void, Never>

        init(_ space: TestSpace, _ channels: [String]) async throws {
            var configuration = space.configuration
            configuration.commandTimeout = .seconds(60)
            let client = RedisClient(configuration: configuration, name: "test-listener")
            try await client.subscribe(channels)
            let inbox = self.inbox
            task = Task {
                while !Task.isCancelled, let message = try? await client.nextMessage() { inbox.messages.withLock { $0.append(message) } }
            }
        }

        /// What came on `channel` so far.
        func count(_ channel: String) -> Int { inbox.messages.withLock { $0.filter { $0.channel == channel }.count } }

        /// Waits (bounded) until `count` messages came on `channel`.
        func awaitCount(_ count: Int, on channel: String, within timeout: Duration) async -> Int {
            _ = await eventually(timeout: timeout) { self.count(channel) >= count ? true : nil }
            return self.count(channel)
        }

        deinit { task.cancel() }
    }

    @Test(
        "while the replica stalls nothing is published or acknowledged, HTTP answers 503, readiness says why; once it is back each request is answered once"
    )
    func stalledReplica() async throws {
        try await withReplicatedServer { space, replica in
            try await space.putTask("t1")
            try await space.run("DEL", space.keys.events)  // The feed holds the creation too; this test counts what updates add.
            let replies = "\(space.prefix):replies"
            let listener = try await Listener(space, [replies, space.keys.updates])
            try await RunningBridge.with(
                space,
                configure: {
                    $0.minReplicas = 1
                    $0.replicaTimeout = .milliseconds(300)
                }
            ) { bridge in
                let base = try #require(await bridge.baseURL())
                let patch = { (k: Int) in #"[{"op":"add","path":"/messages/-","value":{"type":"INFO","key":"m\#(k)"}}]"# }
                try await space.enqueue(task: "t1", patch: patch(0), requestId: "r0", extra: [("reply-to", replies)])
                #expect(await listener.awaitCount(1, on: replies, within: .seconds(10)) == 1, "the reply, with the replica up")
                #expect(await listener.awaitCount(1, on: space.keys.updates, within: .seconds(1)) == 1, "the update, with the replica up")

                replica.pause()
                for k in 1...5 { try await space.enqueue(task: "t1", patch: patch(k), requestId: "r\(k)", extra: [("reply-to", replies)]) }
                var headers = HTTPAPITests.experimental
                headers["X-Request-Id"] = "over-http"
                let refused = try await HTTP.request("PATCH", base + "/task-status/t1", headers: headers, body: Array(patch(6).utf8))
                #expect(refused.status == 503, "\(String(decoding: refused.body, as: UTF8.self))")
                #expect(refused.headers["retry-after"] == "1")
                let ready = try await HTTP.request("GET", base + "/health/ready")
                #expect(ready.status == 503)
                #expect(ready.json?["reasons"]?.jsonText.contains("replicas required (--min-replicas)") == true, "\(ready.json?.jsonText ?? "")")
                let metrics = String(decoding: try await HTTP.request("GET", base + "/metrics").body, as: UTF8.self)
                #expect(metrics.contains(#"taskstatus_redis_refusals_total{reason="NOREPLICAS"}"#), "the shortfall is counted")
                try await Task.sleep(for: .milliseconds(500))
                #expect(
                    listener.count(replies) == 1 && listener.count(space.keys.updates) == 1,
                    "something became visible before the replica confirmed it"
                )
                let group = try await space.run("XINFO", "GROUPS", space.keys.requests).array?.first?.map ?? [:]
                #expect((group["pending"]?.int ?? 0) + (group["lag"]?.int ?? 0) == 5, "an entry was acknowledged: \(group)")
                #expect(try await space.run("XLEN", space.keys.events).int == 1, "no change-feed entry before the replica confirmed")

                replica.resume()
                #expect(await listener.awaitCount(6, on: replies, within: .seconds(20)) == 6, "r1 to r5 once each, after r0")
                #expect(await listener.awaitCount(6, on: space.keys.updates, within: .seconds(5)) == 6, "r0 to r5")
                for k in 1...5 { #expect(try await space.reply(task: "t1", requestId: "r\(k)")["status"] == 200) }
                // The HTTP update was committed before its 503; its repeat gets the stored answer.
                let repeated = try await HTTP.request("PATCH", base + "/task-status/t1", headers: headers, body: Array(patch(6).utf8))
                #expect(repeated.status == 200)
                // The HTTP update is announced when its repeat finds it stored and confirmed.
                #expect(await listener.awaitCount(7, on: space.keys.updates, within: .seconds(5)) == 7)
                let hash = try await space.hash("t1")
                #expect(hash["_rev"] == "8")
                let keys = try JSONValue(parsing: hash["messages"] ?? "[]").arrayValue?.compactMap { $0["key"]?.stringValue } ?? []
                // Each once; the HTTP update may come before the stream's, which waited.
                #expect(keys.sorted() == (0...6).map { "m\($0)" })
                #expect(Array(keys.prefix(2)) == ["m0", "m1"] || keys.first == "m0")
                let idle = try await eventually { () async throws -> Bool? in
                    try await space.run("XPENDING", space.keys.requests, space.keys.group).array?.first == .integer(0) ? true : nil
                }
                #expect(idle == true)
            }
        }
    }

    @Test("asking more replicas than Redis has: nothing becomes visible, and readiness says so")
    func tooFewReplicas() async throws {
        try await withReplicatedServer { space, _ in
            try await space.putTask("t1")
            try await RunningBridge.with(
                space,
                configure: {
                    $0.minReplicas = 2
                    $0.replicaTimeout = .milliseconds(200)
                }
            ) { bridge in
                let base = try #require(await bridge.baseURL())
                try await space.enqueue(task: "t1", patch: "[]", requestId: "r")
                let ready = try await eventually { () async throws -> HTTP.Response? in
                    let r = try await HTTP.request("GET", base + "/health/ready")
                    return r.json?["reasons"]?.jsonText.contains("only 1 of the 2 replicas") == true ? r : nil
                }
                #expect(ready?.status == 503)
                #expect(try await space.run("XPENDING", space.keys.requests, space.keys.group).array?.first?.int == 1)
            }
        }
    }
}
