//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import PropertyBased
import Testing

@Suite("Patching a stream of JSON Lines")
struct JSONLinesPatcherTests {
    /// Feeds `input` to a lines patcher as a reader would, in pieces of `chunk` bytes.
    private func stream(_ input: [UInt8], chunk: Int, parser: JSONParser = JSONParser()) -> [UInt8] {
        var patcher = JSONLinesPatcher(parser: parser)
        var buffer: [UInt8] = []
        var start = 0
        var read = 0
        var out: [UInt8] = []
        while true {
            let atEnd = read == input.count
            if let next = patcher.processLine(in: buffer, from: start, atEnd: atEnd, appendingTo: &out) {
                #expect(next > start)
                start = next
                continue
            }
            if atEnd { return out }
            // A nil leaves `out` alone and means no newline lies ahead.
            #expect(!buffer[start...].contains(0x0A))
            let end = min(read + chunk, input.count)
            buffer.append(contentsOf: input[read..<end])
            read = end
        }
    }

    /// What handling each line on its own gives.
    private func eachLine(_ input: [UInt8], parser: JSONParser = JSONParser()) -> [UInt8] {
        var lines = input.split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        var out: [UInt8] = []
        for line in lines {
            let bytes = Array(line)
            JSONTextPatcher(parser: parser).processLine(bytes, in: 0..<bytes.count, appendingTo: &out)
        }
        return out
    }

    static let lines = [
        #"{"doc":{"a":1,"b":[1,2]},"patch":[{"op":"add","path":"/b/-","value":3}]}"#,
        #"{"patch":[{"op":"replace","path":"","value":[true]}],"doc":{}}"#,
        #"{"doc":{"a":1},"patch":[{"op":"test","path":"/a","value":1},{"op":"remove","path":"/b"}]}"#,
        "not json",
        "{\"doc\":",
        "",
        "[1]",
        #"{"doc":{}}"#,
        #"{"doc":{},"patch":{}}"#,
        #"{"doc":{"a":"\u0041\/","a":2},"patch":[]}"#,
        "{ \"doc\" : { \"a\" : [ 1 , 2 ] ,\t\"b\" : \"x y\" } , \"patch\" : [ ] }\r",
        #"{"doc":{"n":-0,"m":1E400,"k":"a\"b\\c\n"},"patch":[{"op":"move","from":"/k","path":"/z"}]}"#,
        #"{"doc":{"a":[1],"b":[2],"c":3},"patch":[{"op":"copy","from":"/a","path":"/b"}]}"#,
        #"{"doc":{"a":{"x":1},"b":2,"c":3},"patch":[{"op":"move","from":"/c","path":"/a/y"},{"op":"add","path":"/b","value":4}]}"#,
        #"{"doc":{"é":"ü","k":1},"patch":[{"op":"replace","path":"/k","value":"€"}]}"#,
        #"{"doc":{"a":1},"patch":[{"op":"add","path":"/a~1b","value":1},{"op":"add","path":"/c","value":2,"op":"remove"}]}"#,
        "{\"doc\":{\"a\":\"line\nbreak\"},\"patch\":[]}",
        #"{"doc":{"a":1}} trailing"#,
        #"{"doc":{"a":1},"patch":[]}  "#,
    ]

    @Test("a stream of lines gives what each line gives alone, however the input is cut")
    func sameAsEachLine() {
        let input = Array(Self.lines.joined(separator: "\n").utf8)
        let expected = eachLine(input)
        // One output line per input line (the string with a raw newline is two bad lines).
        #expect(expected.count { $0 == 0x0A } == input.split(separator: 0x0A, omittingEmptySubsequences: false).count)
        for chunk in [1, 2, 3, 7, 64, 1 << 20] {
            #expect(stream(input, chunk: chunk) == expected, "chunk \(chunk)")
            #expect(stream(input + [0x0A], chunk: chunk) == expected, "chunk \(chunk), final newline")
        }
    }

    @Test("the limits apply to lines in a stream as to lines alone")
    func limits() {
        let deep = "{\"doc\":" + String(repeating: "[", count: 10) + String(repeating: "]", count: 10) + ",\"patch\":[]}"
        let input = Array((deep + "\n" + #"{"doc":{},"patch":[]}"# + "\n").utf8)
        for parser in [JSONParser(limits: .init(maxDepth: 5)), JSONParser(limits: .init(maxBytes: 20)), JSONParser(limits: .init(maxDepth: 12))] {
            #expect(stream(input, chunk: 5, parser: parser) == eachLine(input, parser: parser))
        }
    }

    @Test("deep nesting and objects with many keys outgrow the scanner's stacks")
    func largeLines() {
        let nested = String(repeating: #"{"a":["#, count: 300) + "1" + String(repeating: "]}", count: 300)
        let wide = "{" + (0..<500).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}"
        let repeated = "{" + (0..<500).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + ",\"k17\":0}"
        let many = "[" + (0..<2000).map { "{\"i\":\($0)}" }.joined(separator: ",") + "]"
        let lines = [nested, wide, repeated, many].map { #"{"doc":"# + $0 + #","patch":[]}"# }
        let input = Array((lines.joined(separator: "\n") + "\n").utf8)
        let parser = JSONParser(limits: .init(maxDepth: 1000))
        let out = stream(input, chunk: 1 << 20, parser: parser)
        #expect(out == eachLine(input, parser: parser))
        // The repeated key is merged as the parser merges it.
        #expect(String(decoding: out, as: UTF8.self).contains(#""k16":16,"k17":0,"k18":18"#))
    }

    @Test("random documents and patches in a stream give the value path's results")
    func randomStream() async {
        await propertyCheck(count: 300, input: RandomJSON.documentsAndPatches) { document, patchValue in
            let line: JSONValue = ["doc": document, "patch": patchValue]
            var expected: [UInt8] = []
            do throws(JSONPatchError) {
                let result = try JSONPatch(patchValue).applied(to: document)
                expected.append(contentsOf: #"{"result":"#.utf8)
                result.write(to: &expected)
            } catch {
                expected.append(contentsOf: #"{"error":"#.utf8)
                JSONWriter.writeString(error.description, to: &expected)
            }
            expected.append(contentsOf: "}\n".utf8)
            let text = line.serialized()
            let input = text + [0x0A] + text
            #expect(stream(input, chunk: 1 << 20) == expected + expected)
            #expect(stream(input, chunk: 13) == expected + expected)
        }
    }
}
