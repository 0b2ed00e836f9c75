//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import TaskStatus
import TestFixtures
import Testing

@testable import Bridge
@testable import LoadTest

/// The cheap way of applying a patch (property by property, on the stored text) against the
/// general one: same successes, same records, same changed fields, on random patches aimed at
/// TaskStatus properties.
@Suite("Memberwise updates")
struct MemberwiseUpdateTests {
    let decoder = PatchRequestDecoder(limits: RequestLimits(), requireExperimentalFlag: false)
    let now = "2026-11-29T00:00:00.000Z"

    static let message: JSONValue = [
        "type": "info", "localizedText": ["locale": "en-US", "message": "step done"], "key": "akey", "parameters": [["name": "value"]],
    ]

    static let values: [JSONValue] = [
        nil, "Step 3", "", "success", "SUCCESS", "Warning", "DONE", "QPOC", "2026-11-28T12:00:00.000Z", "2026-11-28", 0, 55, -1,
        .number(JSONNumber("7.0")!), .number(JSONNumber("0.5")!), "5", true, ["identityCount": 3], [:], [], [message],
        [["type": "BAD", "key": "k"]], message, ["type": "WARN", "key": "k", "localizedText": nil, "parameters": nil],
        ["key": 1], ["name": "n", "attributeName": "a"], ["id": "x", "type": "identity", "name": "n"], ["type": "NOPE"],
        ["id": "2c9", "uniqueName": "u", "description": nil, "parentName": "p", "executor": nil, "arguments": [:]],
    ]

    static let paths =
        TaskProperty.allCases.map { "/\($0.rawValue)" } + [
            "/messages/-", "/messages/0", "/messages/0/type", "/messages/1/localizedText/message", "/returns/-", "/returns/0/name",
            "/attributes/identityCount", "/attributes/new", "/target/type", "/target/name", "/taskDefinitionSummary/arguments/x",
            "/progress/x", "/unknown", "", "/percentComplete/0",
        ]

    /// A value that the schema accepts at `path` (most of the time the patch is then valid).
    static func fitting(_ path: String) -> JSONValue {
        switch path {
        case "/type": return "qpoc"
        case "/completionStatus": return "Success"
        case "/created", "/modified", "/launched", "/completed": return "2026-11-28T12:00:00.000Z"
        case "/percentComplete": return 55
        case "/messages": return [message]
        case "/returns": return []
        case "/attributes": return ["identityCount": 3]
        case "/target": return ["id": "x", "type": "identity", "name": "n"]
        case "/taskDefinitionSummary": return ["id": "2c9", "uniqueName": "u", "parentName": "p", "arguments": [:]]
        case "/messages/-", "/messages/0": return message
        case "/returns/-": return ["name": "n", "attributeName": "a"]
        case "/target/type", "/messages/0/type": return "identity"
        case "/attributes/identityCount", "/attributes/new": return 7
        default: return "Step 3"
        }
    }

    static func pick<T, R: RandomNumberGenerator>(_ items: [T], _ rng: inout R) -> T { items[Int.random(in: 0..<items.count, using: &rng)] }

    static func patch<R: RandomNumberGenerator>(on document: JSONValue, _ rng: inout R) -> JSONValue {
        var operations: [JSONValue] = []
        for _ in 0..<pick([1, 1, 2, 2, 3, 4], &rng) {
            let path = pick(paths, &rng)
            var op = JSONObject()
            op["path"] = .string(path)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0...2:
                op["op"] = "replace"
                op["value"] = Bool.random(using: &rng) ? fitting(path) : pick(values, &rng)
            case 3...5:
                op["op"] = "add"
                op["value"] = Bool.random(using: &rng) ? fitting(path) : pick(values, &rng)
            case 6:
                op["op"] = "remove"
            case 7:
                op["op"] = Bool.random(using: &rng) ? "move" : "copy"
                op["from"] = .string(pick(paths, &rng))
            default:
                op["op"] = "test"
                let current = (try? JSONPointer(path))?.evaluate(in: document)
                op["value"] = Bool.random(using: &rng) ? (current ?? nil) : pick(values, &rng)
            }
            operations.append(.object(op))
        }
        return .array(operations)
    }

    static func documents() throws -> [JSONValue] {
        guard case .object(var busy) = Fixtures.task("t1") else { return [] }
        busy["messages"] = [message, ["type": "ERROR", "key": "e", "localizedText": nil, "parameters": nil]]
        busy["completionStatus"] = "ERROR"
        busy["completed"] = "2026-01-01T00:00:00.000Z"
        busy["parentName"] = "Parent"
        var sparse = busy
        sparse["target"] = nil
        sparse["taskDefinitionSummary"] = ["id": "2c9", "uniqueName": "u", "parentName": "p", "arguments": ["a": [1, 2]]]
        sparse["attributes"] = [:]
        return [Fixtures.task("t1"), .object(busy), .object(sparse)].map { (try? TaskStatusSchema.validate($0)) ?? .null }
    }

    @Test("random patches: the memberwise way decides exactly what the general way decides", arguments: [1, 2, 3])
    func sameDecisions(seed: UInt64) throws {
        // Seeded, so that a failure names a case that can be run again.
        var rng = SplitMix64(seed: seed)
        let writable: [Set<TaskProperty>] = [Set(TaskProperty.allCases), Set(TaskProperty.allCases).subtracting([.progress, .messages])]
        var memberwise = 0
        var successes = 0
        for document in try Self.documents() {
            let record = TaskRecord(rev: 3, document: document)
            for k in 0..<1500 {
                let properties = writable[k % 2]
                let fast = UpdateEvaluator(writableProperties: properties, appliesMemberwise: true)
                let general = UpdateEvaluator(writableProperties: properties, appliesMemberwise: false)
                let patchValue = Self.patch(on: document, &rng)
                let request = decoder.request(String(decoding: patchValue.serialized(), as: UTF8.self))
                let a = fast.evaluate(request, on: record, now: now)
                let b = general.evaluate(request, on: record, now: now)
                let label = "seed \(seed) case \(k): \(patchValue.jsonText) on \(document.jsonText)"
                #expect(a.response.status == b.response.status, "\(label)")
                #expect(a.response.rev == b.response.rev, "\(label)")
                switch (a, b) {
                case (.updated(let x, let xChanged, let xResponse), .updated(let y, let yChanged, let yResponse)):
                    successes += 1
                    #expect(x.rev == y.rev, "\(label)")
                    #expect(String(decoding: x.json, as: UTF8.self) == String(decoding: y.json, as: UTF8.self), "\(label)")
                    #expect(Array(xChanged) == Array(yChanged), "\(label)")
                    #expect(xResponse.body == yResponse.body, "\(label)")
                    #expect(TaskProperty.allCases.allSatisfy { x.valueText($0) == y.valueText($0) }, "\(label)")
                case (.failed(let x), .failed(let y)):
                    #expect(x.body.count == y.body.count, "\(label)")
                default:
                    Issue.record("one way succeeded, the other failed: \(label)")
                }
                if let patch = request.patch, record.applyingMemberwise(patch, now: now) != nil { memberwise += 1 }
            }
        }
        // Enough of both kinds that the comparison means something.
        #expect(successes > 500, "only \(successes) random patches succeeded")
        #expect(memberwise > 500, "only \(memberwise) random patches took the memberwise way")
    }

    @Test("the common patches take the memberwise way")
    func commonPatchesAreMemberwise() throws {
        let record = TaskRecord(rev: 3, document: try TaskStatusSchema.validate(Fixtures.task("t1")))
        let patches = [
            #"[{"op":"replace","path":"/percentComplete","value":40},{"op":"replace","path":"/progress","value":"Step 4"}]"#,
            #"[{"op":"add","path":"/messages/-","value":{"type":"INFO","localizedText":{"locale":"en-US","message":"m"},"key":"k","parameters":[{"name":"v"}]}},{"op":"replace","path":"/attributes/identityCount","value":4}]"#,
            #"[{"op":"test","path":"/id","value":"t1"},{"op":"replace","path":"/completionStatus","value":"Success"},{"op":"replace","path":"/completed","value":"2026-11-28T12:00:00.000Z"}]"#,
            #"[{"op":"remove","path":"/progress"}]"#,
        ]
        for text in patches {
            let patch = try #require(JSONPatch(readingPlain: Array(text.utf8)), "the direct reader declined \(text)")
            let update = try #require(record.applyingMemberwise(patch, now: now), "\(text)")
            #expect(update.record.rev == 4)
            #expect(update.changed.contains(.modified))
        }
    }
}
