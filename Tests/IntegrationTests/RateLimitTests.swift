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

@Suite("Rate limits", .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(2)))
struct RateLimitTests {
    @Test("two instances share one caller's budget; the 429's Retry-After, honoured, lets the next request through")
    func sharedBudget() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            func configure(_ c: inout BridgeConfiguration) {
                c.auth = Tokens.configuration
                // One request back every 10 s, and both instances warmed up first (connections,
                // scripts, the token's key): the four below land within it even on a machine busy
                // with the rest of the suite (with one back every 5 s and cold instances, a CI run
                // once saw the fourth refilled).
                c.rateLimit = RateLimitConfiguration(enabled: true, limit: 1, period: .seconds(10), burst: 3)
            }
            try await RunningBridge.with(space, consumer: "one", configure: configure) { one in
                try await RunningBridge.with(space, consumer: "two", configure: configure) { two in
                    let urls = [try #require(await one.baseURL()), try #require(await two.baseURL())]
                    var headers = HTTPAPITests.experimental
                    var warm = headers
                    warm["Authorization"] = "Bearer " + (try await Tokens.sign(clientId: "warm-up-client"))
                    for url in urls {
                        #expect(try await HTTP.request("PATCH", url + "/task-status/t1", headers: warm, body: Array("[]".utf8)).status == 200)
                    }
                    headers["Authorization"] = "Bearer " + (try await Tokens.sign(clientId: "busy-client"))
                    var statuses: [Int] = []
                    var retryAfter: String?
                    for k in 0..<4 {
                        let response = try await HTTP.request("PATCH", urls[k % 2] + "/task-status/t1", headers: headers, body: Array("[]".utf8))
                        statuses.append(response.status)
                        if response.status == 429 {
                            retryAfter = response.headers["retry-after"]
                            #expect(response.json == ["message": " Rate Limit Exceeded "])
                        }
                    }
                    #expect(statuses == [200, 200, 200, 429], "a burst of 3 shared by both instances")
                    let wait = try #require(retryAfter.flatMap { Int($0) })
                    #expect(wait >= 1 && wait <= 10)
                    // Another caller has a budget of its own.
                    var other = headers
                    other["Authorization"] = "Bearer " + (try await Tokens.sign(clientId: "quiet-client"))
                    #expect(try await HTTP.request("PATCH", urls[1] + "/task-status/t1", headers: other, body: Array("[]".utf8)).status == 200)
                    // With X-Request-Id the 429 is not stored either: the same id goes through later.
                    var identified = headers
                    identified["X-Request-Id"] = "limited-once"
                    #expect(try await HTTP.request("PATCH", urls[0] + "/task-status/t1", headers: identified, body: Array("[]".utf8)).status == 429)
                    try await Task.sleep(for: .seconds(wait))
                    #expect(try await HTTP.request("PATCH", urls[0] + "/task-status/t1", headers: identified, body: Array("[]".utf8)).status == 200)
                }
            }
        }
    }

    @Test(
        "after Redis lost the limiter's script, requests are still limited: it is loaded again",
        .enabled(if: PrivateRedis.isAvailable, "redis-server is not on the PATH")
    )
    func limiterScriptLost() async throws {
        try await TestSpace.withPrivateServer { space in
            try await space.putTask("t1")
            try await RunningBridge.with(
                space,
                configure: {
                    $0.rateLimit = RateLimitConfiguration(enabled: true, limit: 1, period: .seconds(60), burst: 1)
                }
            ) { bridge in
                let channel = "\(space.prefix):r"
                try await space.enqueue(task: "t1", patch: "[]", requestId: "first", extra: [("reply-to", channel)])
                #expect(try await space.reply(task: "t1", requestId: "first")["status"] == 200)
                try await space.run("SCRIPT", "FLUSH")
                let subscriber = RedisClient(configuration: space.configuration, name: "test-subscriber")
                try await subscriber.subscribe([channel])
                try await space.enqueue(task: "t1", patch: "[]", requestId: "second", extra: [("reply-to", channel)])
                #expect(try JSONValue(parsing: try await subscriber.nextMessage().payload)["status"] == 429)
            }
        }
    }

    @Test("on the stream a limited request is answered 429 with headers.Retry-After")
    func stream() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(
                space,
                configure: {
                    $0.auth = Tokens.configuration
                    $0.rateLimit = RateLimitConfiguration(enabled: true, limit: 1, period: .seconds(5), burst: 2)
                }
            ) { bridge in
                let token = "Bearer " + (try await Tokens.sign(clientId: "stream-client"))
                let channel = "\(space.prefix):limited-replies"
                let subscriber = RedisClient(configuration: space.configuration, name: "test-subscriber")
                try await subscriber.subscribe([channel])
                for k in 0..<3 {
                    try await space.enqueue(task: "t1", patch: "[]", requestId: "r\(k)", extra: [("authorization", token), ("reply-to", channel)])
                }
                var replies: [String: JSONValue] = [:]
                for _ in 0..<3 {
                    let reply = try JSONValue(parsing: try await subscriber.nextMessage().payload)
                    replies[reply["requestId"]?.stringValue ?? ""] = reply
                }
                #expect(["r0", "r1", "r2"].map { replies[$0]?["status"]?.int64Value } == [200, 200, 429])
                let limited = try #require(replies["r2"])
                let wait = try #require(limited["headers"]?["Retry-After"]?.stringValue.flatMap { Int($0) })
                #expect(wait >= 1)
                #expect(limited["body"] == ["message": " Rate Limit Exceeded "])
                // The 429 is published, not stored: the request was not processed, and its retry
                // under the same request id, once Retry-After has passed, is.
                #expect(try await space.run("EXISTS", space.keys.reply(taskId: "t1", requestId: "r2")).int == 0)
                try await Task.sleep(for: .seconds(wait))
                try await space.enqueue(task: "t1", patch: "[]", requestId: "r2", extra: [("authorization", token), ("reply-to", channel)])
                #expect(try await space.reply(task: "t1", requestId: "r2")["status"] == 200)
                #expect(try await space.hash("t1")["_rev"] == "4")
            }
        }
    }

    @Test("without authentication, limits are off unless asked for; then the reply channel is the caller")
    func noAuth() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(
                space,
                configure: {
                    $0.rateLimit = RateLimitConfiguration(enabled: true, limit: 1, period: .seconds(5), burst: 1)
                }
            ) { bridge in
                let subscriber = RedisClient(configuration: space.configuration, name: "test-subscriber")
                try await subscriber.subscribe(["\(space.prefix):a"])
                for k in 0..<2 { try await space.enqueue(task: "t1", patch: "[]", requestId: "a\(k)", extra: [("reply-to", "\(space.prefix):a")]) }
                try await space.enqueue(task: "t1", patch: "[]", requestId: "b0", extra: [("reply-to", "\(space.prefix):b")])
                var statuses: [String: Int64] = [:]
                for _ in 0..<2 {
                    let reply = try JSONValue(parsing: try await subscriber.nextMessage().payload)
                    statuses[reply["requestId"]?.stringValue ?? ""] = reply["status"]?.int64Value
                }
                #expect(statuses == ["a0": 200, "a1": 429])
                #expect(try await space.reply(task: "t1", requestId: "b0")["status"] == 200)
            }
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
