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
import TaskStatus
import Testing

/// Contract sections 3 and 4: requests on the stream, one reply each, with the HTTP status and body.
@Suite("Requests and replies", .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(2)))
struct RequestReplyTests {
    private func cause(_ reply: JSONValue) -> String {
        reply["body"]?["causes"]?.arrayValue?.first?["text"]?.stringValue ?? ""
    }

    @Test("a valid patch answers 200 with the updated TaskStatus, stores the reply with a TTL, and bumps _rev")
    func success() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            let subscriber = RedisClient(configuration: TestRedis.configuration, name: "test-subscriber")
            try await subscriber.subscribe(["\(space.prefix):replies:r"])
            try await RunningBridge.with(space) { bridge in
                try await space.enqueue(
                    task: "t1",
                    patch: #"[{"op":"replace","path":"/percentComplete","value":50},{"op":"replace","path":"/progress","value":"Halfway"}]"#,
                    requestId: "r1",
                    extra: [("reply-to", "\(space.prefix):replies:r")]
                )
                let published = try JSONValue(parsing: try await subscriber.nextMessage().payload)
                #expect(published["status"] == 200 && published["rev"] == 2)
                #expect(published["body"]?["percentComplete"] == 50)
                #expect(published["body"]?["progress"] == "Halfway")
                #expect(published["body"]?["modified"] != "2020-07-11T21:23:15.000Z")
                // Every required property is present, null where empty.
                for property in ["parentName", "completed", "completionStatus"] { #expect(published["body"]?[property] == .null) }
                let reply = try await space.reply(task: "t1", requestId: "r1")
                #expect(reply["status"] == 200)
                #expect(reply["requestId"] == "r1")
                #expect(reply["taskId"] == "t1")
                #expect(reply["rev"] == 2)
                // Stored without its task, which is in its hash.
                #expect(reply["body"] == nil)
                #expect(reply["headers"]?["ETag"] == "\"2\"")
                let ttl = try await space.run("TTL", space.keys.reply(taskId: "t1", requestId: "r1")).int ?? 0
                #expect(ttl > 86000 && ttl <= 86400)
                let hash = try await space.hash("t1")
                #expect(hash["_rev"] == "2")
                #expect(hash["percentComplete"] == "50")
            }
        }
    }

    @Test("the reply is published on the request's reply-to channel")
    func replyChannel() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            let subscriber = RedisClient(configuration: TestRedis.configuration, name: "test-subscriber")
            try await subscriber.subscribe(["\(space.prefix):my-replies"])
            try await RunningBridge.with(space) { bridge in
                try await space.enqueue(task: "t1", patch: "[]", requestId: "r1", extra: [("reply-to", "\(space.prefix):my-replies")])
                let message = try await subscriber.nextMessage()
                let reply = try JSONValue(parsing: message.payload)
                #expect(reply["requestId"] == "r1")
                #expect(reply["status"] == 200)
            }
        }
    }

    static let experimental = ("x-sailpoint-experimental", "true")
    static let badRequestCases: [([(String, String)], String)] = [
        ([("patch", "[]"), experimental], "the request has no task id (field id)"),
        ([("id", "t1"), experimental], "the request has no patch (field patch)"),
        ([("id", "t1"), ("patch", "[]")], "x-sailpoint-experimental must be true"),
        ([("id", "t1"), ("patch", "[]"), ("x-sailpoint-experimental", "false")], "x-sailpoint-experimental must be true"),
        ([("id", "t1"), ("patch", "[{"), experimental], "the patch is not valid JSON: invalid JSON at byte 2"),
        ([("id", "t1"), ("patch", #"{"op":"add"}"#), experimental], "a JSON Patch must be an array of operations"),
        ([("id", "t1"), ("patch", #"[{"op":"frob","path":"/a"}]"#), experimental], #"unknown op "frob""#),
        ([("id", "t1"), ("patch", #"[{"op":"add","value":1}]"#), experimental], #"needs a "path" member"#),
        ([("id", "t1"), ("patch", #"[{"op":"add","path":"/progress"}]"#), experimental], #"needs a "value" member"#),
        ([("id", "t1"), ("patch", #"[{"op":"copy","path":"/progress"}]"#), experimental], #"needs a "from" member"#),
        ([("id", "t1"), ("patch", #"[{"op":"remove","path":"progress"}]"#), experimental], "is not a valid JSON Pointer"),
        (
            [("id", "t1"), ("patch", #"[{"op":"test","path":"/progress","value":"Done"}]"#), experimental],
            #"operation 0 (test) at path "/progress": test failed: the value at "/progress" is "Started", not "Done""#
        ),
        (
            [("id", "t1"), ("patch", #"[{"op":"remove","path":"/attributes/nope"}]"#), experimental],
            #"operation 0 (remove) at path "/attributes/nope": the object at "/attributes" has no member "nope""#
        ),
        (
            [("id", "t1"), ("patch", #"[{"op":"replace","path":"/completionStatus","value":"DONE"}]"#), experimental],
            "/completionStatus must be one of SUCCESS, WARNING, ERROR, TERMINATED, TEMPERROR"
        ),
        (
            [("id", "t1"), ("patch", #"[{"op":"add","path":"/extra","value":1}]"#), experimental],
            "/extra is not a TaskStatus property"
        ),
        (
            [("id", "t1"), ("patch", #"[{"op":"replace","path":"/id","value":"t2"}]"#), experimental],
            "id cannot change"
        ),
        (
            [("id", "t1"), ("patch", #"[{"op":"remove","path":"/messages"}]"#), experimental],
            "/messages is required"
        ),
        ([("id", "t1"), ("patch", "[]"), experimental, ("if-match", "abc")], "if-match must be the task's revision"),
    ]

    @Test("bad requests answer 400 with the envelope and a precise cause", arguments: badRequestCases)
    func badRequests(fields: [(String, String)], expectedCause: String) async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                try await space.enqueue(fields + [("request-id", "bad")])
                let taskId = fields.first { $0.0 == "id" }?.1 ?? ""
                let reply = try await space.reply(task: taskId, requestId: "bad")
                #expect(reply["status"] == 400)
                #expect(reply["body"]?["detailCode"] == "400.1 Bad Request Content")
                #expect(reply["body"]?["trackingId"]?.stringValue?.utf8.count == 32)
                #expect(reply["body"]?["messages"]?.arrayValue?.first?["locale"] == "en-US")
                #expect(cause(reply).contains(expectedCause), "\(cause(reply))")
                #expect(try await space.hash("t1")["_rev"] == "1")
            }
        }
    }

    @Test("an unknown task answers 404")
    func notFound() async throws {
        try await TestSpace.with { space in
            try await RunningBridge.with(space) { bridge in
                try await space.enqueue(task: "ghost", patch: "[]", requestId: "r")
                let reply = try await space.reply(task: "ghost", requestId: "r")
                #expect(reply["status"] == 404)
                #expect(reply["body"]?["detailCode"] == "404 Not found")
                #expect(try await space.run("EXISTS", space.keys.task("ghost")) == .integer(0))
            }
        }
    }

    @Test("if-match: a mismatch answers 412, a match applies; ETag forms are accepted")
    func ifMatch() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                try await space.enqueue(task: "t1", patch: "[]", requestId: "stale", extra: [("if-match", "7")])
                let stale = try await space.reply(task: "t1", requestId: "stale")
                #expect(stale["status"] == 412)
                #expect(stale["body"]?["detailCode"] == "412 Precondition Failed")
                #expect(cause(stale) == "if-match is 7 but the task is at revision 1")
                try await space.enqueue(task: "t1", patch: "[]", requestId: "fresh", extra: [("If-Match", "\"1\"")])
                #expect(try await space.reply(task: "t1", requestId: "fresh")["status"] == 200)
                try await space.enqueue(task: "t1", patch: "[]", requestId: "weak", extra: [("if-match", "W/\"2\"")])
                #expect(try await space.reply(task: "t1", requestId: "weak")["rev"] == 3)
            }
        }
    }

    @Test("a failing operation after a valid one changes nothing")
    func atomicity() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await space.run("DEL", space.keys.events)  // The feed holds the creation too; this test counts what updates add.
            let before = try await space.hash("t1")
            try await RunningBridge.with(space) { bridge in
                try await space.enqueue(
                    task: "t1",
                    patch: #"[{"op":"replace","path":"/percentComplete","value":99},{"op":"test","path":"/progress","value":"nope"}]"#,
                    requestId: "r"
                )
                #expect(try await space.reply(task: "t1", requestId: "r")["status"] == 400)
                #expect(try await space.hash("t1") == before)
                #expect(try await space.run("XLEN", space.keys.events) == .integer(0))
            }
        }
    }

    @Test("null clears a field: the hash field is removed, the answer shows null")
    func nullClears() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1", ["completionStatus": "SUCCESS", "parentName": "Parent"])
            #expect(try await space.hash("t1")["completionStatus"] == "SUCCESS")
            try await RunningBridge.with(space) { bridge in
                try await space.enqueue(
                    task: "t1",
                    patch:
                        #"[{"op":"replace","path":"/completionStatus","value":null},{"op":"remove","path":"/parentName"},{"op":"replace","path":"/target","value":null}]"#,
                    requestId: "r"
                )
                let reply = try await space.reply(task: "t1", requestId: "r")
                #expect(reply["status"] == 200)
                #expect(reply["body"] == nil)
                let hash = try await space.hash("t1")
                #expect(hash["completionStatus"] == nil)
                #expect(hash["parentName"] == nil)
                #expect(hash["target"] == nil)
            }
        }
    }

    @Test("each property is stored in its own hash field, encoded by type, readable with HGET")
    func hashEncoding() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                try await space.enqueue(
                    task: "t1",
                    patch: """
                        [{"op":"replace","path":"/completionStatus","value":"Success"},
                         {"op":"replace","path":"/completed","value":"2026-11-28T12:00:00.000Z"},
                         {"op":"replace","path":"/percentComplete","value":100},
                         {"op":"add","path":"/messages/-","value":{"type":"info","localizedText":{"locale":"en-US","message":"done ✓"},"key":"k","parameters":null}},
                         {"op":"replace","path":"/progress","value":"line\\nbreak \\"quoted\\""}]
                        """,
                    requestId: "r"
                )
                #expect(try await space.reply(task: "t1", requestId: "r")["status"] == 200)
                func field(_ name: String) async throws -> String? { try await space.run("HGET", space.keys.task("t1"), name).string }
                #expect(try await field("completionStatus") == "SUCCESS")
                #expect(try await field("completed") == "2026-11-28T12:00:00.000Z")
                #expect(try await field("percentComplete") == "100")
                #expect(try await field("progress") == "line\nbreak \"quoted\"")
                #expect(
                    try await field("messages")
                        == #"[{"type":"INFO","localizedText":{"locale":"en-US","message":"done ✓"},"key":"k","parameters":null}]"#
                )
                #expect(try await field("returns") == #"[{"name":"label","attributeName":"identityCount"}]"#)
                #expect(try await field("type") == "QUARTZ")
            }
        }
    }

    @Test("a repeated request-id is answered from the stored reply and never applied twice")
    func repeatedRequestId() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                let patch = #"[{"op":"add","path":"/messages/-","value":{"type":"INFO","key":"once"}}]"#
                try await space.enqueue(task: "t1", patch: patch, requestId: "same")
                let first = try await space.reply(task: "t1", requestId: "same")
                try await space.enqueue(task: "t1", patch: patch, requestId: "same")
                try await space.enqueue(task: "t1", patch: "[]", requestId: "after")
                _ = try await space.reply(task: "t1", requestId: "after")
                let stored = try await space.reply(task: "t1", requestId: "same")
                #expect(stored == first)
                let hash = try await space.hash("t1")
                #expect(hash["_rev"] == "3")
                #expect(hash["messages"] == #"[{"type":"INFO","key":"once"}]"#)
            }
        }
    }

    @Test("field names match in any case, unknown fields are ignored, the entry id is the default request id")
    func fieldNames() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                let entryId = try await space.enqueue([
                    ("ID", "t1"), ("Patch", "[]"), ("X-SailPoint-Experimental", "TRUE"),
                    ("Content-Type", "application/json-patch+json; charset=utf-8"),
                    ("x-something-else", "ignored"),
                ])
                #expect(try await space.reply(task: "t1", requestId: entryId)["status"] == 200)
            }
        }
    }

    @Test("another content-type answers 415")
    func contentType() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                try await space.enqueue(task: "t1", patch: "[]", requestId: "r", extra: [("content-type", "text/plain")])
                let reply = try await space.reply(task: "t1", requestId: "r")
                #expect(reply["status"] == 415)
                #expect(reply["body"]?["detailCode"] == "415 Unsupported Media Type")
            }
        }
    }

    @Test("a stored task that does not decode answers 500 and the bridge keeps serving")
    func corruptTask() async throws {
        try await TestSpace.with { space in
            try await space.putTask("ok")
            try await space.run("HSET", space.keys.task("broken"), "_rev", "1", "id", "broken", "percentComplete", "lots")
            try await RunningBridge.with(space) { bridge in
                try await space.enqueue(task: "broken", patch: "[]", requestId: "r1")
                let reply = try await space.reply(task: "broken", requestId: "r1")
                #expect(reply["status"] == 500)
                #expect(reply["body"]?["detailCode"] == "500.0 Internal Fault")
                #expect(cause(reply).contains("percentComplete"))
                try await space.enqueue(task: "ok", patch: "[]", requestId: "r2")
                #expect(try await space.reply(task: "ok", requestId: "r2")["status"] == 200)
            }
        }
    }

    @Test("the experimental flag requirement can be switched off")
    func experimentalOff() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space, configure: { $0.requireExperimentalFlag = false }) { bridge in
                try await space.enqueue([("id", "t1"), ("patch", "[]"), ("request-id", "r")])
                #expect(try await space.reply(task: "t1", requestId: "r")["status"] == 200)
            }
        }
    }

    @Test("properties outside the writable set are refused")
    func writableProperties() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space, configure: { $0.writableProperties = [.progress, .percentComplete, .modified] }) { bridge in
                try await space.enqueue(task: "t1", patch: #"[{"op":"replace","path":"/launcher","value":"x"}]"#, requestId: "r")
                let reply = try await space.reply(task: "t1", requestId: "r")
                #expect(reply["status"] == 400)
                #expect(cause(reply) == "launcher is not writable on this bridge")
            }
        }
    }
}
