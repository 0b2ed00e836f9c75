//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import HTTPAPI
import JSONPatch
import Redis
import TaskStatus
import TestFixtures
import Testing

@Suite("Health and Redis restarts", .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(2)))
struct HealthTests {
    @Test("live answers 200; ready answers 200 with pending and lag when Redis answers and the group exists")
    func ready() async throws {
        try await TestSpace.with { space in
            try await RunningBridge.with(space, http: HTTPConfiguration(host: "127.0.0.1", port: 0)) { bridge in
                let base = try #require(await bridge.baseURL())
                let live = try await HTTP.request("GET", "\(base)/health/live")
                #expect(live.status == 200)
                let ready = try #require(
                    try await eventually { () async throws -> HTTP.Response? in
                        let r = try await HTTP.request("GET", "\(base)/health/ready")
                        return r.status == 200 ? r : nil
                    }
                )
                #expect(ready.json?["status"] == "ready")
                #expect(ready.json?["pending"] == 0)
                #expect(ready.json?["lag"] == 0)
                #expect(ready.headers["content-type"] == "application/json")
            }
        }
    }

    @Test(
        "Redis stops: ready says why with 503 and the bridge keeps running; Redis returns empty: the bridge recreates its group and serves",
        .enabled(if: PrivateRedis.isAvailable, "redis-server is not on the PATH")
    )
    func redisRestart() async throws {
        let redis = try PrivateRedis()
        var configuration = BridgeConfiguration(
            redis: try RedisConfiguration(url: redis.url),
            prefix: "restart",
            consumer: "restart-test",
            blockTimeout: .milliseconds(100),
            claimIdle: .milliseconds(300)
        )
        configuration.redis.connectTimeout = .milliseconds(500)
        try await RunningBridge.with(configuration: configuration, http: HTTPConfiguration(host: "127.0.0.1", port: 0)) { bridge in
            let base = try #require(await bridge.baseURL())
            let client = TaskStatusClient(configuration: try RedisConfiguration(url: redis.url), prefix: "restart")
            _ = try await client.put(Fixtures.task("t1"))
            let first = try JSONValue(parsing: try await client.send(.init(taskId: "t1", patch: Array("[]".utf8)), timeout: .seconds(10)))
            #expect(first["status"] == 200)

            await redis.stop()
            let down = try #require(
                try await eventually { () async throws -> HTTP.Response? in
                    let r = try await HTTP.request("GET", "\(base)/health/ready")
                    return r.status == 503 ? r : nil
                }
            )
            #expect(down.json?["status"] == "not ready")
            #expect((down.json?["reasons"]?.arrayValue ?? []).contains { $0.stringValue?.hasPrefix("redis: ") == true })
            #expect(try await HTTP.request("GET", "\(base)/health/live").status == 200)

            try redis.start()
            // The client's old connection died with the server: the first call fails, the next reconnects.
            let stored = try #require(await eventually { try? await client.put(Fixtures.task("t1")) })
            #expect(stored.rev == 1, "Redis came back empty, so the task starts again at _rev 1")
            let second = try JSONValue(parsing: try await client.send(.init(taskId: "t1", patch: Array("[]".utf8)), timeout: .seconds(20)))
            #expect(second["status"] == 200)
            #expect(second["rev"] == 2)
            let back = try await eventually { () async throws -> Bool? in
                try await HTTP.request("GET", "\(base)/health/ready").status == 200 ? true : nil
            }
            #expect(back == true)
        }
    }
}
