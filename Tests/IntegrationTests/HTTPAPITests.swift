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

/// Contract section 7: the HTTP API, through the same engine and commit as the stream.
@Suite("HTTP API", .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(2)))
struct HTTPAPITests {
    static let experimental = ["X-SailPoint-Experimental": "true", "Content-Type": "application/json-patch+json"]

    private func patch(_ base: String, _ path: String, _ body: String, headers: [String: String] = experimental) async throws -> HTTP.Response {
        try await HTTP.request("PATCH", base + path, headers: headers, body: Array(body.utf8))
    }

    @Test("PATCH answers the updated TaskStatus with every required property and its ETag; GET reads it")
    func patchAndGet() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                let response = try await patch(base, "/task-status/t1", #"[{"op":"replace","path":"/completionStatus","value":"Success"}]"#)
                #expect(response.status == 200)
                #expect(response.headers["etag"] == "\"2\"")
                #expect(response.headers["content-type"] == "application/json")
                let body = try #require(response.json)
                #expect(body["completionStatus"] == "SUCCESS")
                for property in TaskProperty.allCases where property.isRequired { #expect(body[property.rawValue] != nil, "\(property)") }
                let read = try await HTTP.request("GET", base + "/task-status/t1", headers: ["X-SailPoint-Experimental": "true"])
                #expect(read.status == 200)
                #expect(read.json == body)
                #expect(read.headers["etag"] == "\"2\"")
                #expect(try await HTTP.request("GET", base + "/task-status/nope", headers: ["X-SailPoint-Experimental": "true"]).status == 404)
            }
        }
    }

    @Test("every route prefix the SDKs use answers; the v1 form needs no experimental header")
    func prefixes() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                var rev = 1
                for prefix in ["", "/beta", "/v2024", "/v2025", "/v2026"] {
                    rev += 1
                    let response = try await patch(base, "\(prefix)/task-status/t1", "[]")
                    #expect(response.status == 200, "\(prefix)")
                    #expect(response.headers["etag"] == "\"\(rev)\"")
                    rev += 1
                    let v1 = try await patch(base, "\(prefix)/task-status/v1/t1", "[]", headers: ["Content-Type": "application/json-patch+json"])
                    #expect(v1.status == 200, "\(prefix)/v1")
                    #expect(try await HTTP.request("GET", base + "\(prefix)/task-status/v1/t1").status == 200)
                }
            }
        }
    }

    @Test("errors answer the stream's envelopes with their statuses")
    func errorStatuses() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await space.run("HSET", space.keys.task("broken"), "_rev", "1", "id", "broken")
            try await RunningBridge.with(space, configure: { $0.limits = RequestLimits(maxPatchBytes: 4096, maxOperations: 5, maxDepth: 8) }) {
                bridge in
                let base = try #require(await bridge.baseURL())
                func expect(_ response: HTTP.Response, _ status: Int, _ detail: String?, _ line: Int = #line) {
                    #expect(response.status == status, "line \(line): \(String(decoding: response.body, as: UTF8.self))")
                    #expect(response.headers["content-type"] == "application/json", "line \(line)")
                    if let detail { #expect(response.json?["detailCode"]?.stringValue == detail, "line \(line)") }
                }
                expect(
                    try await patch(base, "/task-status/t1", "[]", headers: ["Content-Type": "application/json-patch+json"]),
                    400,
                    "400.1 Bad Request Content"
                )
                expect(try await patch(base, "/task-status/t1", #"[{"op":"test","path":"/id","value":"x"}]"#), 400, "400.1 Bad Request Content")
                expect(try await patch(base, "/task-status/t1", "not json"), 400, "400.1 Bad Request Content")
                expect(try await patch(base, "/task-status/ghost", "[]"), 404, "404 Not found")
                // An id starting with } would spread the task's keys over Cluster slots: refused on both methods.
                expect(try await patch(base, "/task-status/%7Dt1", "[]"), 400, "400.1 Bad Request Content")
                expect(try await HTTP.request("GET", base + "/task-status/%7Dt1"), 400, "400.1 Bad Request Content")
                var stale = Self.experimental
                stale["If-Match"] = "\"9\""
                expect(try await patch(base, "/task-status/t1", "[]", headers: stale), 412, "412 Precondition Failed")
                expect(try await patch(base, "/task-status/t1", String(repeating: " ", count: 5000) + "[]"), 413, "413 Payload Too Large")
                var text = Self.experimental
                text["Content-Type"] = "text/plain"
                expect(try await patch(base, "/task-status/t1", "[]", headers: text), 415, "415 Unsupported Media Type")
                var json = Self.experimental
                json["Content-Type"] = "application/json"
                expect(try await patch(base, "/task-status/t1", "[]", headers: json), 200, nil)
                expect(try await patch(base, "/task-status/broken", "[]"), 500, "500.0 Internal Fault")
                let many = "[" + Array(repeating: #"{"op":"test","path":"/id","value":"t1"}"#, count: 6).joined(separator: ",") + "]"
                let tooMany = try await patch(base, "/task-status/t1", many)
                expect(tooMany, 400, nil)
                #expect(tooMany.json?["causes"]?.arrayValue?.first?["text"]?.stringValue?.contains("over the limit of 5") == true)
                let deep = try await patch(base, "/task-status/t1", String(repeating: "[", count: 10) + String(repeating: "]", count: 10))
                expect(deep, 400, nil)
            }
        }
    }

    @Test("the edge answers with the envelope: 405 with Allow, 413 before the body, 431, 400 for Content-Length with Transfer-Encoding")
    func edgeStatuses() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space, configure: { $0.limits = RequestLimits(maxPatchBytes: 4096, maxOperations: 5, maxDepth: 8) }) {
                bridge in
                let base = try #require(await bridge.baseURL())
                let port = try #require(Int(base.split(separator: ":").last ?? ""))
                func expect(_ response: HTTP.Response, _ status: Int, _ detail: String, allow: String? = nil, _ line: Int = #line) {
                    #expect(response.status == status, "line \(line): \(String(decoding: response.body, as: UTF8.self))")
                    #expect(response.headers["content-type"] == "application/json", "line \(line)")
                    #expect(response.json?["detailCode"]?.stringValue == detail, "line \(line)")
                    if let allow { #expect(response.headers["allow"] == allow, "line \(line)") }
                }
                expect(try await HTTP.request("DELETE", base + "/task-status/t1"), 405, "405 Method Not Allowed", allow: "GET, PATCH")
                expect(try await HTTP.request("PUT", base + "/v2025/task-status/v1/t1", body: []), 405, "405 Method Not Allowed", allow: "GET, PATCH")
                expect(try await HTTP.request("POST", base + "/health/ready", body: []), 405, "405 Method Not Allowed", allow: "GET")
                expect(try await HTTP.request("POST", base + "/metrics", body: []), 405, "405 Method Not Allowed", allow: "GET")
                #expect(try await HTTP.request("GET", base + "/task-status/t1/more").status == 404)
                #expect(try await HTTP.request("GET", base + "/nowhere").status == 404)

                func raw(_ text: String) async throws -> RawResponse? {
                    let connection = try await RawConnection.connect(port: port)
                    try await connection.send(text)
                    let response = await connection.response(timeout: .seconds(2))
                    #expect(await connection.waitForClose(timeout: .seconds(3)))
                    return response
                }
                let head =
                    "PATCH /task-status/t1 HTTP/1.1\r\nHost: test\r\nX-SailPoint-Experimental: true\r\nContent-Type: application/json-patch+json\r\n"
                // Over --max-patch-bytes (4096 here): answered at once, no body sent.
                let tooLarge = try await raw(head + "Content-Length: 4097\r\n\r\n")
                #expect(tooLarge?.status == 413)
                #expect(tooLarge.flatMap { try? JSONValue(parsing: $0.body) }?["detailCode"]?.stringValue == "413 Payload Too Large")
                let largeHead = try await raw(head + "X-Large: " + String(repeating: "a", count: 17 * 1024) + "\r\n\r\n")
                #expect(largeHead?.status == 431)
                let smuggled = try await raw(head + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                #expect(smuggled?.status == 400)
                #expect(smuggled.flatMap { try? JSONValue(parsing: $0.body) }?["detailCode"]?.stringValue == "400.1 Bad Request Content")
                #expect(try await space.hash("t1")["_rev"] == "1")
            }
        }
    }

    @Test("the id in the path is percent-decoded, as the SDKs encode it: a%20b is the task the stream calls a b")
    func percentEncodedIds() async throws {
        try await TestSpace.with { space in
            try await space.putTask("a b/c")
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                let patched = try await patch(base, "/task-status/a%20b%2Fc", #"[{"op":"replace","path":"/progress","value":"encoded"}]"#)
                #expect(patched.status == 200, "\(String(decoding: patched.body, as: UTF8.self))")
                let read = try await HTTP.request("GET", base + "/task-status/a%20b%2Fc", headers: Self.experimental)
                #expect(read.status == 200)
                #expect(read.json?["progress"]?.stringValue == "encoded")
                #expect(try await space.hash("a b/c")["_rev"] == "2")
                #expect(try await space.hash("a%20b%2Fc").isEmpty)
            }
        }
    }

    @Test("If-Match with the current ETag applies")
    func ifMatch() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                var headers = Self.experimental
                headers["If-Match"] = "\"1\""
                #expect(try await patch(base, "/task-status/t1", "[]", headers: headers).status == 200)
                #expect(try await patch(base, "/task-status/t1", "[]", headers: headers).status == 412)
            }
        }
    }

    @Test("X-Request-Id makes a PATCH idempotent; the update is announced like a stream one")
    func idempotentAndAnnounced() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            let subscriber = RedisClient(configuration: TestRedis.configuration, name: "sub")
            try await subscriber.subscribe([space.keys.updates("t1")])
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                var headers = Self.experimental
                headers["X-Request-Id"] = "http-1"
                let body = #"[{"op":"add","path":"/messages/-","value":{"type":"INFO","key":"once"}}]"#
                let first = try await patch(base, "/task-status/t1", body, headers: headers)
                let second = try await patch(base, "/task-status/t1", body, headers: headers)
                #expect(first.status == 200)
                #expect(second.json == first.json)
                #expect(try await space.hash("t1")["messages"] == #"[{"type":"INFO","key":"once"}]"#)
                let note = try JSONValue(parsing: try await subscriber.nextMessage().payload)
                #expect(note["requestId"] == "http-1")
                #expect(note["rev"] == 2)
                #expect(try await space.run("XLEN", space.keys.events).int ?? 0 >= 1)
                // Without X-Request-Id nothing is stored for repeats.
                _ = try await patch(base, "/task-status/t1", "[]")
                let stored = try await space.run("KEYS", "\(space.prefix):reply:*").array ?? []
                #expect(stored.count == 1)
            }
        }
    }

    @Test(
        "a change-feed entry Redis refuses after an HTTP commit is sent again once Redis takes it, once; the answer did not wait for it",
        .enabled(if: PrivateRedis.isAvailable, "redis-server is not on the PATH")
    )
    func refusedAnnouncementSentAgain() async throws {
        try await TestSpace.withPrivateServer { space in
            try await space.putTask("t1")
            try await space.run("DEL", space.keys.events)  // The feed holds the creation too; this test counts what updates add.
            // A user that may commit but not append to the feed: the announcement's transaction
            // is refused as it is queued (EXECABORT), nothing of it runs.
            try await space.run("ACL", "SETUSER", "feedless", "on", ">feedless-pw", "~*", "&*", "+@all", "-xadd")
            try await RunningBridge.with(
                space,
                configure: {
                    $0.redis.username = "feedless"
                    $0.redis.password = "feedless-pw"
                }
            ) { bridge in
                let base = try #require(await bridge.baseURL())
                let answer = try await patch(base, "/task-status/t1", #"[{"op":"replace","path":"/percentComplete","value":40}]"#)
                #expect(answer.status == 200)
                #expect(answer.headers["etag"] == #""2""#)
                // Past the first retry (a second later), still refused: nothing in the feed.
                try await Task.sleep(for: .milliseconds(1500))
                #expect(try await space.run("XLEN", space.keys.events).int == 0)
                try await space.run("ACL", "SETUSER", "feedless", "+xadd")
                let length = try await eventually(timeout: .seconds(5)) { () async throws -> Int64? in
                    let n = try await space.run("XLEN", space.keys.events).int ?? 0
                    return n > 0 ? n : nil
                }
                #expect(length == 1)
                // Another second: no copy follows.
                try await Task.sleep(for: .milliseconds(1200))
                let entries = try await space.run("XRANGE", space.keys.events, "-", "+").array ?? []
                #expect(entries.count == 1)
            }
        }
    }

    @Test("/metrics shows requests by path and status, latency, batches and consumer gauges")
    func metrics() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                _ = try await patch(base, "/task-status/t1", "[]")
                try await space.enqueue(task: "t1", patch: "[]", requestId: "s1")
                _ = try await space.reply(task: "t1", requestId: "s1")
                let text = String(decoding: try await HTTP.request("GET", base + "/metrics").body, as: UTF8.self)
                for name in [
                    #"taskstatus_requests_total{path="http",status="200"}"#, #"taskstatus_requests_total{path="stream",status="200"}"#,
                    #"taskstatus_request_duration_seconds_bucket{path="stream""#, #"taskstatus_request_duration_seconds_bucket{path="http""#,
                    "taskstatus_batch_size", "taskstatus_rev_conflicts_total", "taskstatus_redeliveries_total", "taskstatus_dead_lettered_total",
                    "taskstatus_consumer_pending", "taskstatus_consumer_lag",
                ] {
                    #expect(text.contains(name), "\(name)")
                }
            }
        }
    }
}
