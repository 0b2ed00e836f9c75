//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import JSONPatch
import TaskStatus
import TestFixtures
import Testing

/// The decisions of one request, without Redis.
@Suite("Deciding one request")
struct UpdateEvaluatorTests {
    let decoder = PatchRequestDecoder(limits: RequestLimits(), requireExperimentalFlag: true)
    let evaluator = UpdateEvaluator(writableProperties: Set(TaskProperty.allCases))
    let now = "2026-11-29T00:00:00.000Z"

    private func record() throws -> TaskRecord {
        TaskRecord(rev: 4, document: try TaskStatusSchema.validate(Fixtures.task("t1")))
    }

    private func request(_ patch: String, ifMatch: String? = nil) -> PatchRequest {
        decoder.request(patch, ifMatch: ifMatch)
    }

    @Test("a success writes only the changed fields, stamps modified and moves the revision")
    func success() throws {
        let evaluation = evaluator.evaluate(
            request(#"[{"op":"replace","path":"/progress","value":"Working"},{"op":"replace","path":"/launcher","value":"sweep"}]"#),
            on: try record(),
            now: now
        )
        guard case .updated(let updated, let changed, let response) = evaluation else {
            Issue.record("expected an update: \(evaluation.response)")
            return
        }
        #expect(updated.rev == 5)
        #expect(Array(changed) == [.modified, .progress], "launcher did not change, so it is not written")
        #expect(response.status == 200)
        #expect(response.headers.first?.value == "\"5\"")
        let body = try JSONValue(parsing: response.body)
        #expect(body["modified"] == .string(now))
        #expect(body["progress"] == "Working")
    }

    @Test("a patch that sets modified keeps its value")
    func explicitModified() throws {
        let evaluation = evaluator.evaluate(
            request(#"[{"op":"replace","path":"/modified","value":"2030-01-01T00:00:00Z"}]"#),
            on: try record(),
            now: now
        )
        #expect(try JSONValue(parsing: evaluation.response.body)["modified"] == "2030-01-01T00:00:00Z")
    }

    @Test("replacing the whole document is checked in full, id and created included")
    func wholeDocument() throws {
        guard case .object(var object) = Fixtures.task("t1") else { return }
        object["created"] = "2021-01-01T00:00:00Z"
        let patch = JSONValue.array([["op": "replace", "path": "", "value": .object(object)]]).jsonText
        #expect(evaluator.evaluate(request(patch), on: try record(), now: now).response.status == 400)
        object["created"] = "2020-07-11T21:23:15.000Z"
        object["progress"] = "replaced"
        let ok = JSONValue.array([["op": "replace", "path": "", "value": .object(object)]]).jsonText
        #expect(evaluator.evaluate(request(ok), on: try record(), now: now).response.status == 200)
    }

    @Test("moving a value between properties is checked at its new place")
    func moveChecked() throws {
        let evaluation = evaluator.evaluate(request(#"[{"op":"move","from":"/attributes","path":"/progress"}]"#), on: try record(), now: now)
        #expect(evaluation.response.status == 400)
        let body = try JSONValue(parsing: evaluation.response.body)
        #expect(body["causes"]?.arrayValue?.first?["text"]?.stringValue?.contains("/attributes is required") == true)
    }

    @Test("decision order: a malformed request is refused before the task is looked up, then 404, then 412")
    func order() throws {
        #expect(evaluator.evaluate(request("[x"), on: nil, now: now).response.status == 400)
        #expect(evaluator.evaluate(request("[]"), on: nil, now: now).response.status == 404)
        #expect(evaluator.evaluate(request("[]", ifMatch: "3"), on: try record(), now: now).response.status == 412)
        #expect(evaluator.evaluate(request("[]", ifMatch: "4"), on: try record(), now: now).response.status == 200)
    }

    @Test("a value nested deeper than the default parser limit is kept, never turned into null")
    func deepValues() throws {
        // --max-depth allows up to 4096; values the bridge wrote itself must read back whatever their depth.
        let deepDecoder = PatchRequestDecoder(limits: RequestLimits(maxDepth: 1000), requireExperimentalFlag: true)
        let depth = 300
        let deep = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        guard case .object(var document) = Fixtures.task("t1") else { return }
        document["taskDefinitionSummary"] = [
            "id": "d", "uniqueName": "u", "description": nil, "parentName": "p", "executor": nil,
            "arguments": ["deep": try JSONParser.accepted.parse(Array(deep.utf8))],
        ]
        let whole = String(decoding: JSONValue.object(document).serialized(), as: UTF8.self)
        for patch in [
            #"[{"op":"replace","path":"","value":\#(whole)}]"#,
            #"[{"op":"add","path":"/taskDefinitionSummary","value":\#(JSONValue.object(document)["taskDefinitionSummary"]!.jsonText)}]"#,
        ] {
            let evaluation = evaluator.evaluate(deepDecoder.request(patch), on: try record(), now: now)
            guard case .updated(let updated, _, _) = evaluation else {
                Issue.record("expected an update, got \(evaluation.response.status): \(String(decoding: evaluation.response.body, as: UTF8.self))")
                continue
            }
            let arguments = updated.document["taskDefinitionSummary"]?["arguments"]?["deep"]
            #expect(arguments?.jsonText == deep, "the deep value was not kept")
            // The hash fields read back as the same task.
            var fields = TaskProperty.allCases.compactMap { p in updated.field(p).map { (Array(p.rawValue.utf8), $0) } }
            fields.append((Array("_rev".utf8), Array("5".utf8)))
            let back = try #require(try TaskRecord(hash: fields))
            #expect(back.json == updated.json)
        }
    }
}
