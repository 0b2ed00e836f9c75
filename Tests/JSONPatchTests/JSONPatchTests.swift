//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import Testing

@Suite("JSON Patch (RFC 6902)")
struct JSONPatchTests {
    let task: JSONValue = [
        "id": "t1", "percentComplete": 10, "messages": [["key": "a"]], "attributes": ["n": 1], "progress": "Started",
    ]

    private func apply(_ patch: String, to document: JSONValue) throws -> JSONValue {
        try JSONPatch(parsing: patch).applied(to: document)
    }

    private func failure(_ patch: String, on document: JSONValue? = nil) throws -> JSONPatchError {
        try #require(throws: JSONPatchError.self) { try apply(patch, to: document ?? task) }
    }

    @Test("every op works on a task document")
    func allOperations() throws {
        let result = try apply(
            """
            [{"op":"replace","path":"/percentComplete","value":50},
             {"op":"add","path":"/messages/-","value":{"key":"b"}},
             {"op":"add","path":"/messages/0","value":{"key":"z"}},
             {"op":"remove","path":"/progress"},
             {"op":"copy","from":"/attributes/n","path":"/attributes/m"},
             {"op":"move","from":"/attributes/n","path":"/attributes/o"},
             {"op":"test","path":"/messages/2/key","value":"b"}]
            """,
            to: task
        )
        #expect(
            result == [
                "id": "t1", "percentComplete": 50, "messages": [["key": "z"], ["key": "a"], ["key": "b"]],
                "attributes": ["m": 1, "o": 1],
            ]
        )
    }

    @Test("a failing operation leaves the document exactly as it was")
    func allOrNothing() throws {
        var document = task
        #expect(throws: JSONPatchError.self) {
            try JSONPatch(parsing: #"[{"op":"replace","path":"/percentComplete","value":99},{"op":"test","path":"/id","value":"other"}]"#)
                .apply(to: &document)
        }
        #expect(document == task)
    }

    @Test("test compares numbers by value and objects regardless of member order")
    func testEquality() throws {
        _ = try apply(#"[{"op":"test","path":"/percentComplete","value":10.0}]"#, to: task)
        _ = try apply(#"[{"op":"test","path":"/percentComplete","value":1e1}]"#, to: task)
        _ = try apply(
            #"[{"op":"test","path":"","value":{"progress":"Started","attributes":{"n":1},"messages":[{"key":"a"}],"percentComplete":10,"id":"t1"}}]"#,
            to: task
        )
        let error = try failure(#"[{"op":"test","path":"/percentComplete","value":"10"}]"#)
        #expect(error.code == .testFailed)
        #expect(error.reason == #"test failed: the value at "/percentComplete" is 10, not "10""#)
    }

    @Test("move into its own child is refused; move onto itself is a no-op")
    func moveIntoChild() throws {
        let error = try failure(#"[{"op":"move","from":"/attributes","path":"/attributes/inner"}]"#)
        #expect(error.code == .invalidTarget)
        #expect(
            error.description
                == #"operation 0 (move) from "/attributes" to "/attributes/inner": cannot move a value into its own child ("/attributes/inner" is inside "/attributes")"#
        )
        #expect(try apply(#"[{"op":"move","from":"/attributes","path":"/attributes"}]"#, to: task) == task)
        // A sibling whose name starts the same is not a child.
        let doc: JSONValue = ["a": 1, "ab": ["x": 2]]
        #expect(try apply(#"[{"op":"move","from":"/a","path":"/ab/a"}]"#, to: doc) == ["ab": ["x": 2, "a": 1]])
    }

    @Test("errors name the operation index, op, path and reason")
    func errorMessages() throws {
        let remove = try failure(#"[{"op":"test","path":"/id","value":"t1"},{"op":"remove","path":"/messages/3"}]"#)
        #expect(remove.operationIndex == 1)
        #expect(remove.op == "remove")
        #expect(remove.path == "/messages/3")
        #expect(remove.code == .pathNotFound)
        #expect(
            remove.description == #"operation 1 (remove) at path "/messages/3": index 3 is out of bounds for the array at "/messages" of 1 element"#
        )

        let missingParent = try failure(#"[{"op":"add","path":"/nope/x","value":1}]"#)
        #expect(missingParent.reason == #"the document has no member "nope""#)
        #expect(missingParent.code == .pathNotFound)

        let scalarParent = try failure(#"[{"op":"add","path":"/id/x","value":1}]"#)
        #expect(scalarParent.code == .invalidTarget)
        #expect(scalarParent.reason == #"the value at "/id" is a string, not an object or array, so it has no "x""#)

        let leadingZero = try failure(#"[{"op":"replace","path":"/messages/00","value":1}]"#)
        #expect(leadingZero.reason == #""00" is not an array index (digits without leading zeros) for the array at "/messages""#)

        let past = try failure(#"[{"op":"add","path":"/messages/2","value":1}]"#)
        #expect(past.reason == #"index 2 is out of bounds for the array at "/messages" of 1 element"#)

        let root = try failure(#"[{"op":"remove","path":""}]"#)
        #expect(root.reason == "cannot remove the whole document")
    }

    @Test(
        "malformed patch documents are refused before anything is applied",
        arguments: [
            (#"{"op":"add"}"#, nil as Int?, "a JSON Patch must be an array of operations, found an object"),
            (#"[1]"#, 0, "an operation must be an object, found a number"),
            (#"[{"path":"/a"}]"#, 0, #"the operation has no "op" member"#),
            (#"[{"op":1,"path":"/a"}]"#, 0, #""op" must be a string, found a number"#),
            (#"[{"op":"spam","path":"/a"}]"#, 0, #"unknown op "spam"; expected add, remove, replace, move, copy or test"#),
            (#"[{"op":"remove"}]"#, 0, #"the remove operation needs a "path" member"#),
            (#"[{"op":"remove","path":null}]"#, 0, #""path" must be a JSON Pointer string, found null"#),
            (#"[{"op":"add","path":"/a"}]"#, 0, #"the add operation needs a "value" member"#),
            (#"[{"op":"test","path":"/a","value":1},{"op":"copy","path":"/b"}]"#, 1, #"the copy operation needs a "from" member"#),
            (#"[{"op":"move","from":"a","path":"/b"}]"#, 0, #""from" is not a valid JSON Pointer: a JSON Pointer must be empty or start with '/'"#),
        ]
    )
    func malformedPatches(patch: String, index: Int?, reason: String) throws {
        let error = try #require(throws: JSONPatchError.self) { try JSONPatch(parsing: patch) }
        #expect(error.operationIndex == index)
        #expect(error.reason == reason)
    }

    @Test("patch text that is not JSON says where")
    func invalidPatchText() throws {
        let error = try #require(throws: JSONPatchError.self) { try JSONPatch(parsing: "[{\"op\":") }
        #expect(error.code == .invalidJSON)
        #expect(error.reason.contains("at byte 7"))
    }

    @Test("null is a value: add and replace with null keep the member")
    func nullValues() throws {
        #expect(try apply(#"[{"op":"replace","path":"/progress","value":null}]"#, to: task)["progress"] == .null)
        #expect(try apply(#"[{"op":"add","path":"/x","value":null}]"#, to: ["a": 1]) == ["a": 1, "x": nil])
    }

    @Test("the error's JSON form carries every field")
    func errorJSON() throws {
        let error = try failure(#"[{"op":"copy","from":"/nope","path":"/x"}]"#)
        let json = error.jsonValue
        #expect(json["index"] == 0)
        #expect(json["op"] == "copy")
        #expect(json["from"] == "/nope")
        #expect(json["path"] == "/x")
        #expect(json["code"] == "path not found")
    }
}
