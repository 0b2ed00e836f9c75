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
import TaskStatus
import Testing

/// Contract section 6: one reply per request and one effect per request id, wherever its copies
/// arrive, and whatever Redis refuses for a while.
@Suite("Exactly once", .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(2)))
struct ExactlyOnceTests {
    /// Reads `count` Pub/Sub messages (or fewer, if none come for `quiet`).
    private func collect(_ subscriber: RedisClient, count: Int) async -> [[UInt8]] {
        var messages: [[UInt8]] = []
        for _ in 0..<count {
            guard let message = try? await subscriber.nextMessage() else { break }
            messages.append(message.payload)
        }
        return messages
    }

    private func subscriber(_ space: TestSpace, _ channel: String) async throws -> RedisClient {
        var configuration = space.configuration
        configuration.commandTimeout = .seconds(5)
        let subscriber = RedisClient(configuration: configuration, name: "test-subscriber")
        try await subscriber.subscribe([channel])
        return subscriber
    }

    private func stored(_ space: TestSpace, _ task: String, _ requestId: String) async throws -> [UInt8]? {
        try await space.run("GET", space.keys.reply(taskId: task, requestId: requestId)).bytes
    }

    /// The published replies of `requestId`.
    private func published(_ messages: [[UInt8]], _ requestId: String) -> [[UInt8]] {
        messages.filter { (try? JSONValue(parsing: $0))?["requestId"]?.stringValue == requestId }
    }

    @Test("copies of one request id queued together: the first is applied, every copy gets its answer byte for byte")
    func repeatsInOneBatch() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            let channel = "\(space.prefix):replies"
            let subscriber = try await subscriber(space, channel)
            let reply = [("reply-to", channel)]
            // Eight copies, each with a patch of its own: only the first may be applied.
            for k in 0..<8 {
                try await space.enqueue(
                    task: "t1",
                    patch: #"[{"op":"replace","path":"/progress","value":"copy \#(k)"}]"#,
                    requestId: "same",
                    extra: reply
                )
            }
            // A valid first copy and a broken repeat; a broken first copy and a valid repeat.
            try await space.enqueue(
                task: "t1",
                patch: #"[{"op":"replace","path":"/percentComplete","value":10}]"#,
                requestId: "good-first",
                extra: reply
            )
            try await space.enqueue(task: "t1", patch: "[{", requestId: "good-first", extra: reply)
            try await space.enqueue(task: "t1", patch: "[{", requestId: "bad-first", extra: reply)
            try await space.enqueue(
                task: "t1",
                patch: #"[{"op":"replace","path":"/percentComplete","value":99}]"#,
                requestId: "bad-first",
                extra: reply
            )
            try await RunningBridge.with(space) { _ in
                let published = await collect(subscriber, count: 12)
                #expect(published.count == 12)
                let same = try #require(try await stored(space, "t1", "same"))
                let goodFirst = try #require(try await stored(space, "t1", "good-first"))
                let badFirst = try #require(try await stored(space, "t1", "bad-first"))
                // A success is stored without its task: the copies' answers match it in status
                // and revision, and each other byte for byte. An error is stored as published.
                let sameCopies = self.published(published, "same")
                #expect(sameCopies.count == 8 && Set(sameCopies).count == 1, "every copy of 'same' gets the same answer")
                #expect(try JSONValue(parsing: sameCopies.first ?? [])["rev"] == JSONValue(parsing: same)["rev"])
                let goodCopies = self.published(published, "good-first")
                #expect(goodCopies.count == 2 && Set(goodCopies).count == 1)
                #expect(published.filter { $0 == badFirst }.count == 2)
                #expect(try JSONValue(parsing: same)["body"] == nil && JSONValue(parsing: sameCopies.first ?? [])["body"]?["progress"] == "copy 0")
                #expect(try JSONValue(parsing: same)["status"] == 200)
                #expect(try JSONValue(parsing: goodFirst)["status"] == 200)
                #expect(try JSONValue(parsing: badFirst)["status"] == 400)
                let hash = try await space.hash("t1")
                #expect(hash["_rev"] == "3", "one update for 'same' and one for 'good-first'")
                #expect(hash["progress"] == "copy 0")
                #expect(hash["percentComplete"] == "10")
            }
        }
    }

    @Test("a repeat once the task has moved on: applied once, answered 200 with the task now (ETag now, rev its own), announced again")
    func repeatAfterTheTaskMovedOn() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            let subscriber = RedisClient(configuration: TestRedis.configuration, name: "test-subscriber")
            try await subscriber.subscribe(["\(space.prefix):replies:x"])
            let reply = [("reply-to", "\(space.prefix):replies:x")]
            try await RunningBridge.with(space) { _ in
                let first = #"[{"op":"replace","path":"/percentComplete","value":10}]"#
                try await space.enqueue(task: "t1", patch: first, requestId: "a", extra: reply)
                let answered = try JSONValue(parsing: try await subscriber.nextMessage().payload)
                #expect(answered["rev"] == 2 && answered["body"]?["percentComplete"] == 10)
                try await space.enqueue(task: "t1", patch: #"[{"op":"replace","path":"/percentComplete","value":20}]"#, requestId: "b", extra: reply)
                _ = try await subscriber.nextMessage()
                try await space.enqueue(task: "t1", patch: first, requestId: "a", extra: reply)
                let again = try JSONValue(parsing: try await subscriber.nextMessage().payload)
                #expect(again["status"] == 200 && again["rev"] == 2, "rev stays the revision the request made")
                #expect(again["headers"]?["ETag"] == "\"3\"", "the ETag is the task's revision now, which the body shows")
                #expect(again["body"]?["percentComplete"] == 20)
                #expect(try await space.hash("t1")["_rev"] == "3", "not applied twice")
                let stored = try await space.reply(task: "t1", requestId: "a")
                #expect(stored["rev"] == 2 && stored["status"] == 200 && stored["body"] == nil)
            }
        }
    }

    @Test("a large task, written by the stream and HTTP at once: staged commits apply each append once and leave no stage behind")
    func largeTaskFromBothPaths() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                let text = String(repeating: "z", count: 400)
                func append(_ key: String) -> String {
                    #"[{"op":"add","path":"/messages/-","value":{"type":"INFO","key":"\#(key)","localizedText":{"locale":"en-US","message":"\#(text)"}}}]"#
                }
                // Past 40 messages the messages field is over the staging threshold.
                for k in 0..<60 {
                    var headers = HTTPAPITests.experimental
                    headers["X-Request-Id"] = "h\(k)"
                    let sent = headers
                    async let viaHTTP = HTTP.request("PATCH", base + "/task-status/t1", headers: sent, body: Array(append("h\(k)").utf8))
                    try await space.enqueue(task: "t1", patch: append("s\(k)"), requestId: "s\(k)")
                    #expect(try await viaHTTP.status == 200)
                }
                #expect(try await space.reply(task: "t1", requestId: "s59")["status"] == 200)
                let hash = try await space.hash("t1")
                #expect(hash["_rev"] == "121")
                let keys = try JSONValue(parsing: hash["messages"] ?? "[]").arrayValue?.compactMap { $0["key"]?.stringValue } ?? []
                #expect(keys.count == 120 && Set(keys).count == 120, "every append once")
                #expect((hash["messages"]?.utf8.count ?? 0) > 16 * 1024, "past the staging threshold")
                #expect(try await space.run("TTL", space.keys.task("t1")).int == -1, "the task took no TTL from its stage")
                #expect(try await space.run("KEYS", "\(space.prefix):stage:*").array?.isEmpty == true, "a stage was left behind")
                let read = try await HTTP.request("GET", base + "/task-status/t1", headers: HTTPAPITests.experimental)
                #expect(read.headers["etag"] == "\"121\"" && read.json?["messages"]?.arrayValue?.count == 120)
            }
        }
    }

    @Test("the same request id on the stream and over HTTP at once is applied once, and both get the same answer")
    func repeatsAcrossPaths() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                for k in 0..<20 {
                    let patch = #"[{"op":"add","path":"/messages/-","value":{"type":"INFO","key":"m\#(k)"}}]"#
                    var headers = HTTPAPITests.experimental
                    headers["X-Request-Id"] = "both-\(k)"
                    let sent = headers
                    async let viaHTTP = HTTP.request("PATCH", base + "/task-status/t1", headers: sent, body: Array(patch.utf8))
                    try await space.enqueue(task: "t1", patch: patch, requestId: "both-\(k)")
                    let response = try await viaHTTP
                    let streamed = try await space.reply(task: "t1", requestId: "both-\(k)")
                    // One was applied, the other answered from its stored reply, with the task now
                    // (the same revision: nothing else wrote in between).
                    #expect(response.status == 200)
                    #expect(streamed["rev"]?.int64Value == Int64(k + 2))
                    #expect(response.headers["etag"] == "\"\(k + 2)\"")
                    #expect(response.json?["messages"]?.arrayValue?.count == k + 1)
                }
                let hash = try await space.hash("t1")
                #expect(hash["_rev"] == "21")
                let keys = try JSONValue(parsing: hash["messages"] ?? "[]").arrayValue?.compactMap { $0["key"]?.stringValue } ?? []
                #expect(keys == (0..<20).map { "m\($0)" })
            }
        }
    }

    @Test(
        "while Redis refuses writes (memory full), nothing is answered or acknowledged; readiness says why; afterwards each request is applied once",
        .enabled(if: PrivateRedis.isAvailable, "redis-server is not on the PATH")
    )
    func memoryFull() async throws {
        try await TestSpace.withPrivateServer { space in
            try await space.putTask("t1")
            let channel = "\(space.prefix):replies"
            let subscriber = try await subscriber(space, channel)
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                // The bridge is set up and has committed once; then, in one step, a backlog arrives and
                // memory is full.
                try await space.enqueue(task: "t1", patch: "[]", requestId: "warm-up")
                #expect(try await space.reply(task: "t1", requestId: "warm-up")["status"] == 200)
                var backlog: [RedisCommand] = [RedisCommand("MULTI")]
                for k in 0..<20 {
                    backlog.append(
                        RedisCommand(
                            "XADD",
                            space.keys.requests,
                            "*",
                            "id",
                            "t1",
                            "request-id",
                            "r\(k)",
                            "reply-to",
                            channel,
                            "x-sailpoint-experimental",
                            "true",
                            "patch",
                            #"[{"op":"add","path":"/messages/-","value":{"type":"INFO","key":"m\#(k)"}}]"#
                        )
                    )
                }
                backlog += [RedisCommand("CONFIG", "SET", "maxmemory", "1"), RedisCommand("EXEC")]
                _ = try await space.redis.execute(backlog)
                // HTTP meets the same refusal: 503 with Retry-After and the envelope, nothing applied.
                var headers = HTTPAPITests.experimental
                headers["X-Request-Id"] = "over-http"
                let patch = Array(#"[{"op":"replace","path":"/progress","value":"over http"}]"#.utf8)
                let refused = try await HTTP.request("PATCH", base + "/task-status/t1", headers: headers, body: patch)
                #expect(refused.status == 503, "\(String(decoding: refused.body, as: UTF8.self))")
                #expect(Int(refused.headers["retry-after"] ?? "") ?? 0 >= 1)
                #expect(refused.json?["detailCode"] == "503 Service Unavailable")
                let ready = await eventually(timeout: .seconds(5)) { () async -> HTTP.Response? in
                    let r = try? await HTTP.request("GET", base + "/health/ready")
                    return r?.status == 503 && r?.json?["reasons"]?.jsonText.contains("OOM") == true ? r : nil
                }
                #expect(ready != nil, "readiness does not name the refusal")
                #expect(ready?.json?["reasons"]?.jsonText.contains("http: OOM") == true, "readiness does not name the HTTP path's refusal")
                try await Task.sleep(for: .seconds(1))
                for k in 0..<20 { #expect(try await stored(space, "t1", "r\(k)") == nil, "r\(k) was answered while Redis refused writes") }
                #expect(try await space.hash("t1")["_rev"] == "2")
                let metrics = String(decoding: try await HTTP.request("GET", base + "/metrics").body, as: UTF8.self)
                #expect(metrics.contains("taskstatus_redis_refusals_total"))

                try await space.run("CONFIG", "SET", "maxmemory", "0")
                let published = await collect(subscriber, count: 20)
                #expect(published.count == 20)
                for k in 0..<20 {
                    let reply = try #require(try await stored(space, "t1", "r\(k)"))
                    #expect(try JSONValue(parsing: reply)["status"] == 200)
                    let copies = self.published(published, "r\(k)")
                    #expect(copies.count == 1, "r\(k) was not published exactly once")
                    #expect(try JSONValue(parsing: copies.first ?? [])["rev"] == JSONValue(parsing: reply)["rev"])
                }
                let applied = try await HTTP.request("PATCH", base + "/task-status/t1", headers: headers, body: patch)
                #expect(applied.status == 200)
                let hash = try await space.hash("t1")
                #expect(hash["_rev"] == "23")
                let keys = try JSONValue(parsing: hash["messages"] ?? "[]").arrayValue?.compactMap { $0["key"]?.stringValue } ?? []
                #expect(keys == (0..<20).map { "m\($0)" })
                let idle = try await eventually { () async throws -> Bool? in
                    try await space.run("XPENDING", space.keys.requests, space.keys.group).array?.first == .integer(0) ? true : nil
                }
                #expect(idle == true, "entries left pending")
                let readyAgain = await eventually { () async -> Bool? in
                    (try? await HTTP.request("GET", base + "/health/ready"))?.status == 200 ? true : nil
                }
                #expect(readyAgain == true)
            }
        }
    }

    @Test(
        "HTTP updates wait in a bounded queue: past it they are answered 503 with Retry-After at once, the others when Redis is back",
        .enabled(if: PrivateRedis.isAvailable, "redis-server is not on the PATH")
    )
    func boundedHTTPQueue() async throws {
        try await TestSpace.withPrivateServer { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space, configure: { $0.httpQueueLimit = 2 }) { bridge in
                let base = try #require(await bridge.baseURL())
                let body = Array(#"[{"op":"replace","path":"/progress","value":"queued"}]"#.utf8)
                #expect(try await HTTP.request("PATCH", base + "/task-status/t1", headers: HTTPAPITests.experimental, body: body).status == 200)
                // Redis stalls: the HTTP worker blocks on the next batch, later ones wait.
                // Long enough for the ten requests below to arrive on a loaded machine, short of the
                // command timeout (5 s), after which the worker would reconnect and wait again.
                try await space.run("CLIENT", "PAUSE", 3500, "ALL")
                async let first = HTTP.request("PATCH", base + "/task-status/t1", headers: HTTPAPITests.experimental, body: body)
                try await Task.sleep(for: .milliseconds(300))
                let responses = try await withThrowingTaskGroup(of: HTTP.Response.self) { group in
                    for _ in 0..<10 {
                        group.addTask { try await HTTP.request("PATCH", base + "/task-status/t1", headers: HTTPAPITests.experimental, body: body) }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(try await first.status == 200)
                let busy = responses.filter { $0.status == 503 }
                #expect(busy.count == 8, "\(responses.map(\.status))")
                #expect(busy.allSatisfy { $0.headers["retry-after"] == "1" && $0.json?["detailCode"] == "503 Service Unavailable" })
                #expect(responses.filter { $0.status == 200 }.count == 2)
                #expect(try await space.hash("t1")["_rev"] == "5")
            }
        }
    }

    @Test(
        "a task written without pause by another service: HTTP answers 503 with Retry-After after a few rounds, never 500, and never sleeps on its thread"
    )
    func contendedOverHTTP() async throws {
        try await TestSpace.with { space in
            try await space.putTask("hot")
            try await space.putTask("cold")
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                let key = space.keys.task("hot")
                let hammer = Task {
                    let redis = RedisClient(configuration: space.configuration, name: "hammer")
                    let bumps = [RedisCommand](repeating: RedisCommand("HINCRBY", key, "_rev", 1), count: 200)
                    let deadline = ContinuousClock.now + .seconds(3)
                    while ContinuousClock.now < deadline, !Task.isCancelled { _ = try await redis.execute(bumps) }
                }
                defer { hammer.cancel() }
                try await Task.sleep(for: .milliseconds(100))
                let body = Array(#"[{"op":"replace","path":"/progress","value":"contended"}]"#.utf8)
                var statuses: [Int] = []
                for _ in 0..<5 {
                    let response = try await HTTP.request("PATCH", base + "/task-status/hot", headers: HTTPAPITests.experimental, body: body)
                    statuses.append(response.status)
                    if response.status == 503 { #expect(response.headers["retry-after"] == "1") }
                    // The HTTP thread is free for others meanwhile.
                    #expect(try await HTTP.request("GET", base + "/task-status/cold", headers: ["X-SailPoint-Experimental": "true"]).status == 200)
                }
                #expect(statuses.allSatisfy { $0 == 200 || $0 == 503 }, "\(statuses)")
                _ = try? await hammer.value
            }
        }
    }

    @Test("a dead letter is written before its 500 is stored: when the dead-letter stream refuses it, the entry stays pending")
    func deadLetterFirst() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            let entry = try await space.enqueue(task: "t1", patch: "[]", requestId: "poison")
            try await space.run("XGROUP", "CREATE", space.keys.requests, space.keys.group, "0", "MKSTREAM")
            try await space.run("XREADGROUP", "GROUP", space.keys.group, "crashed", "COUNT", 10, "STREAMS", space.keys.requests, ">")
            try await space.run("XCLAIM", space.keys.requests, space.keys.group, "crashed", 0, entry, "RETRYCOUNT", 5)
            // The dead-letter key holds a string: XADD to it fails (WRONGTYPE).
            try await space.run("SET", space.keys.dead, "in the way")
            try await RunningBridge.with(space) { _ in
                try await Task.sleep(for: .milliseconds(1500))
                #expect(try await stored(space, "t1", "poison") == nil, "a 500 was stored for an entry that never reached the dead-letter stream")
                let pending = try await space.run("XPENDING", space.keys.requests, space.keys.group)
                #expect(pending.array?.first == .integer(1))
                try await space.run("DEL", space.keys.dead)
                let dead = try await eventually { () async throws -> [RedisReply]? in
                    let entries = try await space.run("XRANGE", space.keys.dead, "-", "+").array ?? []
                    return entries.isEmpty ? nil : entries
                }
                #expect(dead?.count == 1)
                #expect(try await space.reply(task: "t1", requestId: "poison")["status"] == 500)
                let acked = try await eventually { () async throws -> Bool? in
                    try await space.run("XPENDING", space.keys.requests, space.keys.group).array?.first == .integer(0) ? true : nil
                }
                #expect(acked == true)
            }
        }
    }

    @Test(
        "a service that cannot start (the HTTP port is taken) stops the process within seconds, non-zero, naming the cause",
        .enabled(if: BridgeProcess.isAvailable, "the task-status-bridge executable is not built")
    )
    func startFailure() async throws {
        try await TestSpace.with { space in
            // Hold a port.
            let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(holder) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(holder, $0, length) == 0 && listen(holder, 1) == 0 && getsockname(holder, $0, &length) == 0
                }
            }
            try #require(bound)
            let port = Int(UInt16(bigEndian: address.sin_port))
            let bridge = try BridgeProcess.serve(space, consumer: "no-port", extra: ["--http-port", String(port)])
            let status = await bridge.waitForExit(timeout: .seconds(10))
            #expect(status != nil, "the process is still running with its HTTP server failed")
            #expect(status != 0)
            #expect(bridge.output.lowercased().contains("address already in use"), "\(bridge.output)")
            #expect(bridge.output.contains(String(port)), "\(bridge.output)")
            if status == nil { bridge.kill(SIGKILL) }
        }
    }
}
