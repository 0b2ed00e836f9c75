//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import Testing

@Suite("Patching JSON text and JSON Lines")
struct JSONTextPatcherTests {
    private func line(_ text: String, parser: JSONParser = JSONParser()) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        JSONTextPatcher(parser: parser).processLine(bytes, in: 0..<bytes.count, appendingTo: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test("a request line gives its result line")
    func resultLine() {
        #expect(line(#"{"doc":{"a":1,"b":[1,2]},"patch":[{"op":"add","path":"/b/-","value":3}]}"#) == "{\"result\":{\"a\":1,\"b\":[1,2,3]}}\n")
        #expect(line(#"{"patch":[{"op":"replace","path":"","value":[true]}],"doc":{}}"#) == "{\"result\":[true]}\n")
    }

    @Test("a failing patch gives an error line naming the operation")
    func errorLine() {
        #expect(
            line(#"{"doc":{"a":1},"patch":[{"op":"test","path":"/a","value":1},{"op":"remove","path":"/b"}]}"#)
                == "{\"error\":\"operation 1 (remove) at path \\\"/b\\\": the document has no member \\\"b\\\"\"}\n"
        )
    }

    @Test(
        "bad lines give error lines",
        arguments: [
            ("not json", "the line is not valid JSON: invalid JSON at byte 1: expected 'null', found 'o'"),
            ("{\"doc\":", "the line is not valid JSON: invalid JSON at byte 7: expected a value, found the end of input"),
            ("[1]", "a line must be an object {\\\"doc\\\":...,\\\"patch\\\":[...]}"),
            (#"{"doc":{}}"#, "the line has no \\\"patch\\\" member"),
            (#"{"patch":[]}"#, "the line has no \\\"doc\\\" member"),
            (#"{"doc":{},"patch":{}}"#, "a JSON Patch must be an array of operations, found an object"),
            ("", "the line is not valid JSON: invalid JSON at byte 0: expected a value, found the end of input"),
        ]
    )
    func badLines(text: String, message: String) {
        #expect(line(text) == "{\"error\":\"\(message)\"}\n")
    }

    @Test("text that is not canonical goes through the parser with the same result")
    func nonCanonicalText() {
        // Escapes the writer does not use, repeated keys, white space: all rewritten as the parser would.
        #expect(line(#"{"doc":{"a":"\u0041\/","a":2},"patch":[]}"#) == "{\"result\":{\"a\":2}}\n")
        #expect(line(#"{"doc":{"s":"\u00e9"},"patch":[{"op":"test","path":"/s","value":"é"}]}"#) == "{\"result\":{\"s\":\"é\"}}\n")
        #expect(line("{ \"doc\" : { \"a\" : [ 1 , 2 ] ,\t\"b\" : \"x y\" } , \"patch\" : [ ] }\r") == "{\"result\":{\"a\":[1,2],\"b\":\"x y\"}}\n")
        #expect(line(#"{"doc":{"n":-0,"m":1E400,"k":"a\"b\\c\n"},"patch":[]}"#) == "{\"result\":{\"n\":-0,\"m\":1E400,\"k\":\"a\\\"b\\\\c\\n\"}}\n")
    }

    @Test("lines over the parser's limits give error lines")
    func limits() {
        let deep = "{\"doc\":" + String(repeating: "[", count: 10) + String(repeating: "]", count: 10) + ",\"patch\":[]}"
        #expect(line(deep, parser: JSONParser(limits: .init(maxDepth: 5))).contains("deeper than the limit of 5"))
        #expect(line(#"{"doc":{},"patch":[]}"#, parser: JSONParser(limits: .init(maxBytes: 10))).contains("over the limit of 10"))
    }
}
