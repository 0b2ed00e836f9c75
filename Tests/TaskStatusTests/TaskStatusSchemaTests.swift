//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import TaskStatus
import Testing

@Suite("TaskStatus schema and hash codec")
struct TaskStatusSchemaTests {
    let task: JSONValue = [
        "id": "t1", "type": "quartz", "uniqueName": "u", "description": "d", "parentName": nil, "launcher": "l",
        "created": "2020-07-11T21:23:15.000Z", "modified": "2020-07-11T21:23:15.000+02:00", "launched": nil, "completed": nil,
        "completionStatus": "Success", "messages": [["type": "warn", "key": "k", "localizedText": nil, "parameters": [["a": 1]]]],
        "returns": [], "attributes": ["x": [1, 2]], "progress": nil, "percentComplete": 5.0,
        "target": ["id": "i", "type": "Identity", "name": "n"],
    ]

    @Test("a valid TaskStatus comes back canonical: schema order, upper-case enums, integers")
    func canonical() throws {
        let canonical = try TaskStatusSchema.validate(task)
        #expect(
            canonical.objectValue?.keys == [
                "id", "type", "uniqueName", "description", "parentName", "launcher", "target", "created", "modified", "launched", "completed",
                "completionStatus", "messages", "returns", "attributes", "progress", "percentComplete",
            ]
        )
        #expect(canonical["type"] == "QUARTZ")
        #expect(canonical["completionStatus"] == "SUCCESS")
        #expect(canonical["target"]?["type"] == "IDENTITY")
        #expect(canonical["messages"]?.arrayValue?.first?["type"] == "WARN")
        #expect(canonical["percentComplete"] == .integer(5))
    }

    static let violationCases: [(String, JSONValue, String)] = [
        ("type", JSONValue.string("DAILY"), "/type must be one of QUARTZ, QPOC, QUEUED_TASK, not \"DAILY\""),
        ("launcher", .null, "/launcher cannot be null"),
        ("created", "2020-13-01T00:00:00Z", "/created must be an RFC 3339 date-time"),
        ("percentComplete", "5", "/percentComplete must be an integer, not \"5\""),
        ("percentComplete", 5.5, "/percentComplete must be an integer, not 5.5"),
        // SailPoint's schema (v2026 and v1) and its Go SDK make it an int32.
        ("percentComplete", 2_147_483_648, "/percentComplete must be a 32-bit integer (-2147483648 to 2147483647), not 2147483648"),
        ("percentComplete", .integer(Int64.min), "/percentComplete must be a 32-bit integer (-2147483648 to 2147483647), not -9223372036854775808"),
        ("percentComplete", .number(JSONNumber("1e10")!), "/percentComplete must be a 32-bit integer"),
        ("messages", ["type": "INFO"], "/messages must be an array, not an object"),
        ("messages", [["type": "INFO"]], "/messages/0/key is required"),
        ("messages", [["type": "LOUD", "key": "k"]], "/messages/0/type must be one of INFO, WARN, ERROR"),
        ("returns", [["name": "n"]], "/returns/0/attributeName is required"),
        ("attributes", [1], "/attributes must be an object, not an array"),
        ("target", ["type": "GROUP"], "/target/type must be one of APPLICATION, IDENTITY"),
        ("taskDefinitionSummary", ["arguments": 5], "/taskDefinitionSummary/arguments must be an object"),
        ("surprise", 1, "/surprise is not a TaskStatus property"),
    ]

    @Test("modified may be null, as SailPoint's schema has it since 2026; percentComplete takes the int32 range")
    func currentSchema() throws {
        guard case .object(var object) = task else { return }
        object["modified"] = nil
        object["percentComplete"] = .integer(2_147_483_647)
        let canonical = try TaskStatusSchema.validate(.object(object))
        #expect(canonical["modified"] == .null)
        object["percentComplete"] = .integer(-2_147_483_648)
        #expect(try TaskStatusSchema.validate(.object(object))["percentComplete"] == .integer(-2_147_483_648))
        // A stored task without the field decodes, with modified null.
        let record = TaskRecord(rev: 1, document: canonical)
        #expect(record.field(.modified) == nil)
        let fields = TaskProperty.allCases.compactMap { p in record.field(p).map { (Array(p.rawValue.utf8), $0) } }
        let back = try #require(try TaskRecord(hash: fields + [(Array("_rev".utf8), Array("1".utf8))]))
        #expect(back.document["modified"] == .null)
    }

    @Test("a revision at the largest integer is corrupt: the next update could not count past it")
    func largestRevision() throws {
        let record = TaskRecord(rev: 1, document: try TaskStatusSchema.validate(task))
        let fields = TaskProperty.allCases.compactMap { p in record.field(p).map { (Array(p.rawValue.utf8), $0) } }
        #expect(throws: CorruptTask.self) { try TaskRecord(hash: fields + [(Array("_rev".utf8), Array(String(Int64.max).utf8))]) }
        #expect(try TaskRecord(hash: fields + [(Array("_rev".utf8), Array(String(Int64.max - 1).utf8))])?.rev == Int64.max - 1)
    }

    @Test("no value may nest deeper than a stored task can be read back")
    func depthBound() throws {
        guard case .object(var object) = task else { return }
        var deep = JSONValue.array([])
        for _ in 1..<TaskStatusSchema.maxDocumentDepth { deep = .array([deep]) }
        object["attributes"] = ["deep": deep]
        let error = try #require(throws: SchemaViolation.self) { try TaskStatusSchema.validate(.object(object)) }
        #expect(error.description.contains("/attributes nests deeper than"), "\(error)")
        // Appended elements count the array they join.
        #expect(throws: SchemaViolation.self) { try TaskStatusSchema.validateElement(deep, of: .messages, at: "/messages/-") }
        // Within the bound, a deep value is fine.
        var fine = JSONValue.object(JSONObject())
        for _ in 1..<(TaskStatusSchema.maxDocumentDepth - 2) { fine = .array([fine]) }
        object["attributes"] = ["fine": fine]
        _ = try TaskStatusSchema.validate(.object(object))
        // Unwind the deep values without deep recursion in their deinit.
        object = JSONObject()
        while case .array(let inner) = deep, let first = inner.first { deep = first }
        while case .array(let inner) = fine, let first = inner.first { fine = first }
    }

    @Test("violations name the place and the reason", arguments: violationCases)
    func violations(property: String, value: JSONValue, reason: String) throws {
        guard case .object(var object) = task else { return }
        object[property] = value
        let error = try #require(throws: SchemaViolation.self) { try TaskStatusSchema.validate(.object(object)) }
        #expect(error.description.contains(reason), "\(error)")
    }

    @Test("a missing required non-nullable property is refused; a missing nullable one becomes null")
    func missing() throws {
        guard case .object(var object) = task else { return }
        object["completionStatus"] = nil
        #expect(try TaskStatusSchema.validate(.object(object))["completionStatus"] == .null)
        object["description"] = nil
        #expect(throws: SchemaViolation.self) { try TaskStatusSchema.validate(.object(object)) }
    }

    @Test(
        "RFC 3339 date-times",
        arguments: [
            ("2020-07-11T21:23:15.000Z", true), ("2020-07-11t21:23:15z", true), ("2024-02-29T00:00:00+05:30", true), ("2023-02-29T00:00:00Z", false),
            ("2020-07-11 21:23:15Z", false), ("2020-07-11T25:00:00Z", false), ("2020-07-11T21:23:15", false), ("2020-07-11T21:23:15.Z", false),
        ]
    )
    func dateTimes(text: String, valid: Bool) {
        #expect(RFC3339.isValid(text) == valid)
    }

    @Test("now() is RFC 3339 UTC with milliseconds")
    func now() {
        let stamp = RFC3339.now()
        #expect(RFC3339.isValid(stamp))
        #expect(stamp.hasSuffix("Z"))
        #expect(stamp.count == 24)
        #expect(RFC3339.format(seconds: 0, milliseconds: 5) == "1970-01-01T00:00:00.005Z")
        #expect(RFC3339.format(seconds: 951_782_400, milliseconds: 0) == "2000-02-29T00:00:00.000Z")
    }

    @Test("hash fields round-trip: strings as text, integers as decimal, objects and arrays as compact JSON, null absent")
    func hashCodec() throws {
        let record = TaskRecord(rev: 3, document: try TaskStatusSchema.validate(task))
        func field(_ p: TaskProperty) -> String? { record.field(p).map { String(decoding: $0, as: UTF8.self) } }
        #expect(field(.id) == "t1")
        #expect(field(.percentComplete) == "5")
        #expect(field(.attributes) == #"{"x":[1,2]}"#)
        #expect(field(.parentName) == nil)
        var hash: [(field: [UInt8], value: [UInt8])] = [(Array("_rev".utf8), Array("3".utf8))]
        for property in TaskProperty.allCases {
            if let value = record.field(property) { hash.append((Array(property.rawValue.utf8), value)) }
        }
        hash.append((Array("owner-service-field".utf8), Array("ignored".utf8)))
        let decoded = try #require(try TaskRecord(hash: hash))
        #expect(decoded == record)
        #expect(try JSONValue(parsing: record.taskJSON) == record.document)
    }

    @Test("a hash that does not decode names the field")
    func corrupt() throws {
        let record = TaskRecord(rev: 1, document: try TaskStatusSchema.validate(task))
        let base: [(field: [UInt8], value: [UInt8])] =
            TaskProperty.allCases.compactMap { p in record.field(p).map { (Array(p.rawValue.utf8), $0) } } + [(Array("_rev".utf8), Array("1".utf8))]
        func corrupted(_ name: String, _ value: String?) -> CorruptTask? {
            var hash = base.filter { String(decoding: $0.field, as: UTF8.self) != name }
            if let value { hash.append((Array(name.utf8), Array(value.utf8))) }
            do {
                _ = try TaskRecord(hash: hash)
                return nil
            } catch {
                return error
            }
        }
        #expect(corrupted("_rev", nil)?.field == "_rev")
        #expect(corrupted("_rev", "x")?.field == "_rev")
        #expect(corrupted("percentComplete", "lots")?.field == "percentComplete")
        #expect(corrupted("messages", "[{")?.field == "messages")
        #expect(corrupted("description", nil)?.field == "description")
        #expect(corrupted("type", "NOPE")?.field == "type")
        #expect(try TaskRecord(hash: []) == nil)
    }

    @Test("error envelopes have SailPoint's shape")
    func envelopes() throws {
        let body = try JSONValue(parsing: ErrorEnvelope.body(status: 404, cause: "no task t9"))
        #expect(body["detailCode"] == "404 Not found")
        #expect(body["trackingId"]?.stringValue?.count == 32)
        #expect(body["messages"]?.arrayValue?.first?["localeOrigin"] == "DEFAULT")
        #expect(body["causes"]?.arrayValue?.first?["text"] == "no task t9")
        #expect(
            try JSONValue(parsing: ErrorEnvelope.body(status: 401, cause: "JWT is expired")) == ["error": "JWT validation failed: JWT is expired"]
        )
        #expect(try JSONValue(parsing: ErrorEnvelope.body(status: 429, cause: "")) == ["message": " Rate Limit Exceeded "])
        let reply = try JSONValue(parsing: TaskResponse.error(429, "", headers: [("Retry-After", "3")]).replyJSON(requestId: "r", taskId: "t"))
        #expect(reply["headers"] == ["Retry-After": "3"])
        #expect(reply["rev"] == nil)
    }
}
