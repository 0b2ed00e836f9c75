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

/// Contract section 9: creating tasks (stream `create`, `POST /task-status`, `put`) and SailPoint's
/// list (`GET /task-status`) over the index kept in the commit.
@Suite("Creating and listing tasks", .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(2)))
struct WatchingTests {
    static let json = ["X-SailPoint-Experimental": "true", "Content-Type": "application/json"]
    static let experimental = ["X-SailPoint-Experimental": "true"]

    static func document(_ id: String, _ changes: [String: JSONValue] = [:]) -> JSONValue {
        guard case .object(var object) = Fixtures.task(id) else { return Fixtures.task(id) }
        for (key, value) in changes { object[key] = value }
        return .object(object)
    }

    static func text(_ value: JSONValue) -> String { String(decoding: value.serialized(), as: UTF8.self) }

    @Test("a stream entry with create stores the task at revision 1 and answers 201; an existing id answers 409; a repeat gets the stored reply")
    func createOnStream() async throws {
        try await TestSpace.with { space in
            try await RunningBridge.with(space) { _ in
                let doc = Self.text(Self.document("c1", ["type": "qpoc"]))
                try await space.enqueue([("create", doc), ("request-id", "r1"), ("x-sailpoint-experimental", "true")])
                let reply = try await space.reply(task: "c1", requestId: "r1")
                #expect(reply["status"] == 201)
                #expect(reply["rev"] == 1)
                #expect(reply["headers"]?["ETag"] == "\"1\"")
                #expect(try await space.hash("c1")["_rev"] == "1")
                #expect(try await space.hash("c1")["type"] == "QPOC")
                try await space.enqueue([("create", doc), ("request-id", "r2"), ("x-sailpoint-experimental", "true")])
                let conflict = try await space.reply(task: "c1", requestId: "r2")
                #expect(conflict["status"] == 409)
                #expect(conflict["body"]?["detailCode"] == "409 Conflict")
                // The repeat of r1 is answered from its stored reply, with the task as it is now.
                try await space.enqueue([("create", doc), ("request-id", "r1"), ("x-sailpoint-experimental", "true"), ("reply-to", "nobody")])
                try await space.enqueue(task: "c1", patch: "[]", requestId: "r3")
                #expect(try await space.reply(task: "c1", requestId: "r3")["rev"] == 2)
                #expect(try await space.hash("c1")["_rev"] == "2")
                // A document that breaks the schema is a 400, and an id that disagrees with it too.
                try await space.enqueue([("create", #"{"id":"c2"}"#), ("request-id", "r4"), ("x-sailpoint-experimental", "true")])
                #expect(try await space.reply(task: "c2", requestId: "r4")["status"] == 400)
                try await space.enqueue([("id", "other"), ("create", doc), ("request-id", "r5"), ("x-sailpoint-experimental", "true")])
                #expect(try await space.reply(task: "other", requestId: "r5")["status"] == 400)
                // Announced like an update, at revision 1, with the add that makes the task.
                let feed = try await space.run("XRANGE", space.keys.events, "-", "+")
                let events =
                    feed.array?.compactMap { entry -> JSONValue? in
                        guard let fields = entry.array?.last?.pairs, let event = fields.first(where: { $0.field == Array("event".utf8) }) else {
                            return nil
                        }
                        return try? JSONValue(parsing: event.value)
                    } ?? []
                let created = try #require(events.first { $0["rev"] == 1 })
                #expect(created["id"] == "c1")
                let operation = created["patch"]?.arrayValue?.first
                #expect(operation?["op"] == "add")
                #expect(operation?["path"] == "")
            }
        }
    }

    @Test("POST /task-status answers 201 with Location and ETag at every prefix, 409 for an existing id, 415 for another media type")
    func createOverHTTP() async throws {
        try await TestSpace.with { space in
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                for (k, prefix) in ["", "/beta", "/v2024", "/v2025", "/v2026"].enumerated() {
                    let id = "h \(k)"
                    let created = try await HTTP.request(
                        "POST",
                        base + "\(prefix)/task-status",
                        headers: Self.json,
                        body: Self.document(id).serialized()
                    )
                    #expect(created.status == 201, "\(prefix): \(String(decoding: created.body, as: UTF8.self))")
                    #expect(created.headers["etag"] == "\"1\"")
                    #expect(created.headers["location"] == "\(prefix)/task-status/h%20\(k)")
                    #expect(created.json?["id"] == .string(id))
                    let read = try await HTTP.request("GET", base + (created.headers["location"] ?? ""), headers: Self.experimental)
                    #expect(read.status == 200)
                    let v1 = try await HTTP.request(
                        "POST",
                        base + "\(prefix)/task-status/v1",
                        headers: ["Content-Type": "application/json"],
                        body: Self.document("v1-\(k)").serialized()
                    )
                    #expect(v1.status == 201)
                    #expect(v1.headers["location"] == "\(prefix)/task-status/v1/v1-\(k)")
                }
                let again = try await HTTP.request("POST", base + "/task-status", headers: Self.json, body: Self.document("h 0").serialized())
                #expect(again.status == 409)
                #expect(again.json?["detailCode"] == "409 Conflict")
                let patchType = try await HTTP.request(
                    "POST",
                    base + "/task-status",
                    headers: ["X-SailPoint-Experimental": "true", "Content-Type": "application/json-patch+json"],
                    body: Self.document("x").serialized()
                )
                #expect(patchType.status == 415)
                let invalid = try await HTTP.request("POST", base + "/task-status", headers: Self.json, body: Array(#"{"id":"bad"}"#.utf8))
                #expect(invalid.status == 400)
                #expect(try await space.hash("bad").isEmpty)
            }
        }
    }

    /// Stores `count` tasks created a second apart (`t000` oldest), every third completed.
    static func seed(_ space: TestSpace, count: Int) async throws {
        var documents: [JSONValue] = []
        for k in 0..<count {
            let id = "t" + String(repeating: "0", count: 3 - String(k).count) + String(k)
            documents.append(
                document(
                    id,
                    [
                        "created": .string(RFC3339.format(seconds: 1_600_000_000 + Int64(k), milliseconds: 0)),
                        "completionStatus": k % 3 == 0 ? "SUCCESS" : nil,
                        "type": k % 2 == 0 ? "QUARTZ" : "QPOC",
                        "launcher": k % 5 == 0 ? "alice" : "bob",
                        "target": ["id": .string("src-\(k % 4)"), "type": "APPLICATION", "name": "S"],
                    ]
                )
            )
        }
        _ = try await TaskStatusClient(configuration: space.configuration, prefix: space.prefix).put(documents)
    }

    static func ids(_ response: HTTP.Response) -> [String] {
        (response.json?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
    }

    static func list(_ base: String, _ query: String) async throws -> HTTP.Response {
        try await HTTP.request("GET", base + "/v2026/task-status" + query, headers: experimental)
    }

    static func expected(_ count: Int, newestFirst: Bool = true, _ keep: (Int) -> Bool = { _ in true }) -> [String] {
        let ks = (0..<count).filter(keep)
        return (newestFirst ? ks.reversed() : ks).map { "t" + String(repeating: "0", count: 3 - String($0).count) + String($0) }
    }

    @Test("GET /task-status pages newest first by default, sorts, counts, and filters by status, type, launcher, source and id")
    func listFiltersAndPages() async throws {
        try await TestSpace.with { space in
            try await Self.seed(space, count: 30)
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                let all = try await Self.list(base, "?count=true")
                #expect(all.status == 200)
                #expect(Self.ids(all) == Self.expected(30))
                #expect(all.headers["x-total-count"] == "30")
                #expect(all.headers["x-last-event-id"] != nil)
                let page = try await Self.list(base, "?limit=5&offset=5&sorters=created")
                #expect(Self.ids(page) == Array(Self.expected(30, newestFirst: false)[5..<10]))
                #expect(page.headers["x-total-count"] == nil)
                let running = try await Self.list(base, "?count=true&limit=4&filters=" + "completionStatus isnull".percentEncodedQuery)
                #expect(Self.ids(running) == Array(Self.expected(30) { $0 % 3 != 0 }.prefix(4)))
                let plus = try await Self.list(base, "?count=true&limit=4&filters=completionStatus+isnull")
                #expect(Self.ids(plus) == Self.ids(running), "+ is a space in a query, as forms send it")
                #expect(running.headers["x-total-count"] == "20")
                let success = try await Self.list(base, "?count=true&filters=" + #"completionStatus in ("success","Warning")"#.percentEncodedQuery)
                #expect(Self.ids(success) == Self.expected(30) { $0 % 3 == 0 })
                let filtered = try await Self.list(
                    base,
                    "?count=true&offset=1&limit=2&filters="
                        + #"type eq "quartz" and launcher in ("alice") and sourceId eq "src-0""#.percentEncodedQuery
                )
                let matching = Self.expected(30) { $0 % 2 == 0 && $0 % 5 == 0 && $0 % 4 == 0 }
                #expect(Self.ids(filtered) == Array(matching.dropFirst().prefix(2)))
                #expect(filtered.headers["x-total-count"] == String(matching.count))
                let byId = try await Self.list(
                    base,
                    "?count=true&filters=" + #"id in ("t001","t007","nope") and completionStatus isnull"#.percentEncodedQuery
                )
                #expect(Self.ids(byId) == ["t007", "t001"])
                #expect(byId.headers["x-total-count"] == "2")
                let v1 = try await HTTP.request("GET", base + "/task-status/v1?limit=1")
                #expect(v1.status == 200)
                #expect(Self.ids(v1) == ["t029"])
                #expect(Self.ids(try await Self.list(base, "?limit=0")) == [])
            }
        }
    }

    @Test("a list right after a 200 shows the update: the index moves in the commit")
    func listFollowsUpdates() async throws {
        try await TestSpace.with { space in
            try await Self.seed(space, count: 6)
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                let query = "?count=true&filters=" + "completionStatus isnull".percentEncodedQuery
                #expect(try await Self.list(base, query).headers["x-total-count"] == "4")
                let done = try await HTTP.request(
                    "PATCH",
                    base + "/v2026/task-status/t001",
                    headers: ["X-SailPoint-Experimental": "true", "Content-Type": "application/json-patch+json"],
                    body: Array(#"[{"op":"replace","path":"/completionStatus","value":"ERROR"}]"#.utf8)
                )
                #expect(done.status == 200)
                let after = try await Self.list(base, query)
                #expect(after.headers["x-total-count"] == "3")
                #expect(!Self.ids(after).contains("t001"))
                let errors = try await Self.list(base, "?filters=" + #"completionStatus eq "ERROR""#.percentEncodedQuery)
                #expect(Self.ids(errors) == ["t001"])
                let created = try await HTTP.request(
                    "POST",
                    base + "/task-status",
                    headers: Self.json,
                    body: Self.document("new", ["created": "2030-01-01T00:00:00Z"]).serialized()
                )
                #expect(created.status == 201)
                #expect(Self.ids(try await Self.list(base, "?limit=1")) == ["new"])
            }
        }
    }

    @Test("a filter, sorter or number the list does not support is a 400 that names it")
    func listRefusals() async throws {
        try await TestSpace.with { space in
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                for (query, says) in [
                    ("?limit=251", "limit"), ("?limit=-1", "limit"), ("?offset=-3", "offset"), ("?offset=x", "offset"), ("?count=yes", "count"),
                    ("?sorters=name", "sorters"), ("?filters=" + #"name eq "x""#.percentEncodedQuery, "name"),
                    ("?filters=" + #"id sw "x""#.percentEncodedQuery, "sw"), ("?filters=" + #"type isnull"#.percentEncodedQuery, "isnull"),
                    ("?filters=" + #"id eq "x" or id eq "y""#.percentEncodedQuery, "and"),
                    ("?filters=" + #"completionStatus eq "DONE""#.percentEncodedQuery, "DONE"),
                    ("?filters=" + #"id eq "x"#.percentEncodedQuery, "closed"),
                ] {
                    let response = try await Self.list(base, query)
                    #expect(response.status == 400, "\(query)")
                    let cause = response.json?["causes"]?.arrayValue?.first?["text"]?.stringValue ?? ""
                    #expect(cause.contains(says), "\(query): \(cause)")
                }
                #expect(try await HTTP.request("GET", base + "/v2026/task-status").status == 400)
            }
        }
    }
}

extension WatchingTests {
    @Test("reindex puts hashes written by hand in the index, resumes a stopped run, and changes nothing when run again")
    func reindexesHandWrittenTasks() async throws {
        try await TestSpace.with { space in
            // Written as an older version (or a person) would: fields and _rev, no index.
            for k in 0..<30 {
                var fields: [any RedisArgument] = [space.keys.task("old\(k)"), "_rev", "3"]
                let record = TaskRecord(
                    rev: 3,
                    document: try TaskStatusSchema.validate(
                        Self.document(
                            "old\(k)",
                            [
                                "created": .string(RFC3339.format(seconds: 1_500_000_000 + Int64(k), milliseconds: 0)),
                                "completionStatus": k < 10 ? "WARNING" : nil,
                            ]
                        )
                    )
                )
                for property in TaskProperty.allCases {
                    if let value = record.field(property) {
                        fields.append(property.rawValue)
                        fields.append(value)
                    }
                }
                try await space.redis.execute(RedisCommand("HSET", arguments: fields))
            }
            try await space.run("SET", "\(space.prefix):task:{not-a-hash}", "x")
            let reindexer = Reindexer(configuration: space.configuration, prefix: space.prefix, shards: 1)
            // A run stopped after its last step resumes as done: nothing more to index.
            try await space.run("HSET", reindexer.progressKey, RedisConfiguration.describe(space.configuration.endpoint), "done")
            #expect(try await reindexer.run(batch: 7) { _ in }.indexed == 0)
            #expect(try await space.run("EXISTS", reindexer.progressKey).int == 0, "a finished run forgets its cursors")
            let first = try await reindexer.run(batch: 7) { _ in }
            #expect(first.indexed == 30)
            #expect(try await space.run("ZCARD", space.keys.index("WARNING")).int == 10)
            #expect(try await space.run("ZCARD", space.keys.index("none")).int == 20)
            let again = try await reindexer.run(batch: 7) { _ in }
            #expect(again.indexed == 30)
            #expect(try await space.run("ZCARD", space.keys.index("none")).int == 20)
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                let warned = try await Self.list(base, "?count=true&limit=3&filters=" + #"completionStatus eq "WARNING""#.percentEncodedQuery)
                #expect(warned.headers["x-total-count"] == "10")
                #expect(Self.ids(warned) == ["old9", "old8", "old7"])
            }
        }
    }

    @Test("retention removes completed tasks older than the limit with their index entries and stored replies, never running ones, and counts them")
    func retentionRemovesOldCompletedTasks() async throws {
        try await TestSpace.with { space in
            let now = Int64(RFC3339.unixMilliseconds() / 1000)
            func stamp(_ secondsAgo: Int64) -> JSONValue { .string(RFC3339.format(seconds: now - secondsAgo, milliseconds: 0)) }
            let day: Int64 = 86_400
            _ = try await TaskStatusClient(configuration: space.configuration, prefix: space.prefix).put([
                Self.document("old-done", ["created": stamp(5 * day), "completed": stamp(3 * day), "completionStatus": "SUCCESS"]),
                Self.document("old-error", ["created": stamp(9 * day), "completed": stamp(2 * day), "completionStatus": "ERROR"]),
                Self.document("recent-done", ["created": stamp(5 * day), "completed": stamp(day / 2), "completionStatus": "SUCCESS"]),
                Self.document("old-running", ["created": stamp(30 * day), "completed": nil, "completionStatus": nil]),
            ])
            // Stored replies: of a task that goes (decided against it: it has a rev), of one that
            // stays, and a 404 for a task that never existed (kept, so that its repeats get it).
            let replies = [
                ("old-done", "r1", #"{"requestId":"r1","taskId":"old-done","status":200,"rev":2,"headers":{"ETag":"\"2\""}}"#),
                ("recent-done", "r2", #"{"requestId":"r2","taskId":"recent-done","status":200,"rev":2,"headers":{"ETag":"\"2\""}}"#),
                ("never", "r3", #"{"requestId":"r3","taskId":"never","status":404,"headers":{},"body":{}}"#),
            ]
            for (task, request, json) in replies {
                try await space.run("SET", space.keys.reply(taskId: task, requestId: request), json, "EX", "3600")
            }
            try await RunningBridge.with(space, configure: { $0.retention = .seconds(day) }) { bridge in
                let base = try #require(await bridge.baseURL())
                let removed = try await eventually(timeout: .seconds(10)) { () async throws -> Bool? in
                    let done = try await space.hash("old-done").isEmpty
                    let error = try await space.hash("old-error").isEmpty
                    return done && error ? true : nil
                }
                #expect(removed == true)
                #expect(try await !space.hash("recent-done").isEmpty)
                #expect(try await !space.hash("old-running").isEmpty)
                let listed = try await Self.list(base, "?count=true")
                #expect(Set(Self.ids(listed)) == ["recent-done", "old-running"])
                #expect(listed.headers["x-total-count"] == "2")
                let metrics = String(decoding: try await HTTP.request("GET", base + "/metrics").body, as: UTF8.self)
                #expect(metrics.contains("taskstatus_retention_removed_total 2"))
                let replyGone = try await eventually(timeout: .seconds(10)) { () async throws -> Bool? in
                    try await space.run("EXISTS", space.keys.reply(taskId: "old-done", requestId: "r1")).int == 0 ? true : nil
                }
                #expect(replyGone == true, "the removed task's stored reply goes too")
                #expect(try await space.run("EXISTS", space.keys.reply(taskId: "recent-done", requestId: "r2")).int == 1)
                #expect(try await space.run("EXISTS", space.keys.reply(taskId: "never", requestId: "r3")).int == 1)
            }
        }
    }
}

extension String {
    /// The text as a query parameter value.
    var percentEncodedQuery: String {
        var out = ""
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                out.append(Character(Unicode.Scalar(byte)))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded
            }
        }
        return out
    }

    fileprivate var leftPadded: String { count < 2 ? "0" + self : self }
}
