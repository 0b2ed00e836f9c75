//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import Testing

@Suite("JSON Pointer (RFC 6901)")
struct JSONPointerTests {
    // The example document of RFC 6901 section 5.
    let document: JSONValue = [
        "foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8,
    ]

    @Test("the RFC's examples resolve")
    func rfcExamples() throws {
        let expected: [(String, JSONValue)] = [
            ("", document), ("/foo", ["bar", "baz"]), ("/foo/0", "bar"), ("/", 0), ("/a~1b", 1), ("/c%d", 2), ("/e^f", 3),
            ("/g|h", 4), ("/i\\j", 5), ("/k\"l", 6), ("/ ", 7), ("/m~0n", 8),
        ]
        for (pointer, value) in expected {
            #expect(try JSONPointer(pointer).resolve(in: document) == value, "\(pointer)")
        }
    }

    @Test("escapes decode in the right order and encode back")
    func escapes() throws {
        #expect(try JSONPointer("/~01").tokens == ["~1"])
        #expect(try JSONPointer("/a~1b/~0c").tokens == ["a/b", "~c"])
        #expect(JSONPointer(tokens: ["a/b", "~c", ""]).description == "/a~1b/~0c/")
        #expect(try JSONPointer("").tokens.isEmpty)
        #expect(try JSONPointer("/").tokens == [""])
    }

    @Test("malformed pointers say which token failed")
    func malformed() throws {
        #expect(throws: JSONPointerError.self) { try JSONPointer("foo") }
        do {
            _ = try JSONPointer("/a/b~2/c")
            Issue.record("accepted ~2")
        } catch {
            #expect(error.code == .invalidSyntax)
            #expect(error.tokenIndex == 1)
            #expect(error.reason.contains("token 1"))
        }
        #expect(throws: JSONPointerError.self) { try JSONPointer("/a~") }
    }

    @Test("array indices have no leading zeros, and - names no element")
    func arrayIndices() throws {
        #expect(JSONPointer.arrayIndex("0") == 0)
        #expect(JSONPointer.arrayIndex("10") == 10)
        for bad in ["01", "00", "-1", "1e0", "+1", "", " 1", "-", "99999999999999999999"] {
            #expect(JSONPointer.arrayIndex(bad) == nil, "\(bad)")
        }
        let error = try #require(throws: JSONPointerError.self) { try JSONPointer("/foo/-").resolve(in: document) }
        #expect(error.code == .notFound)
        #expect(error.tokenIndex == 1)
    }

    @Test("resolution errors name the failing token and the location")
    func resolutionErrors() throws {
        let missing = try #require(throws: JSONPointerError.self) { try JSONPointer("/foo/5").resolve(in: document) }
        #expect(missing.reason == "index 5 is out of bounds for the array at \"/foo\" of 2 elements")
        let scalar = try #require(throws: JSONPointerError.self) { try JSONPointer("/a~1b/x").resolve(in: document) }
        #expect(scalar.code == .notAContainer)
        #expect(scalar.reason == "the value at \"/a~1b\" is a number, not an object or array, so it has no \"x\"")
        let member = try #require(throws: JSONPointerError.self) { try JSONPointer("/nope").resolve(in: document) }
        #expect(member.reason == "the document has no member \"nope\"")
    }
}
