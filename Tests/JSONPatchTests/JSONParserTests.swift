//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import Testing

@Suite("JSON parsing and serialisation")
struct JSONParserTests {
    private func roundTrip(_ text: String) throws -> String {
        try JSONValue(parsing: text).jsonText
    }

    private func parseError(_ text: String, limits: JSONParser.Limits = .init()) -> JSONParseError? {
        do {
            _ = try JSONParser(limits: limits).parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test("integers stay exact across the whole 64-bit range")
    func exactIntegers() throws {
        #expect(try JSONValue(parsing: "9223372036854775807") == .integer(.max))
        #expect(try JSONValue(parsing: "-9223372036854775808") == .integer(.min))
        #expect(try roundTrip("[9223372036854775807,-9223372036854775808,0,-1]") == "[9223372036854775807,-9223372036854775808,0,-1]")
    }

    @Test("numbers beyond 64 bits and non-integers keep their literal text")
    func numbersKeepTheirText() throws {
        for literal in [
            "9223372036854775808", "-9223372036854775809", "123456789012345678901234567890", "0.1", "1E400", "-0", "1.50", "2e-7", "-0.0",
        ] {
            #expect(try roundTrip(literal) == literal)
        }
        guard case .number(let big) = try JSONValue(parsing: "18446744073709551616") else {
            Issue.record("expected a literal number")
            return
        }
        #expect(big.literal == "18446744073709551616")
    }

    @Test("numbers compare by value")
    func numbersCompareByValue() throws {
        #expect(try JSONValue(parsing: "1") == JSONValue(parsing: "1.0"))
        #expect(try JSONValue(parsing: "100") == JSONValue(parsing: "1e2"))
        #expect(try JSONValue(parsing: "1.50") == JSONValue(parsing: "15e-1"))
        #expect(try JSONValue(parsing: "-0") == JSONValue(parsing: "0"))
        #expect(try JSONValue(parsing: "9007199254740993") != JSONValue(parsing: "9007199254740992.0"))
        #expect(try JSONValue(parsing: "1") != JSONValue(parsing: "\"1\""))
    }

    @Test("strings decode every escape and surrogate pair, and serialise back minimally")
    func stringEscapes() throws {
        let value = try JSONValue(parsing: #""a\"b\\c\/d\b\f\n\r\t\u0001\u00e9\ud83d\ude00""#)
        #expect(value == .string("a\"b\\c/d\u{08}\u{0C}\n\r\t\u{01}é😀"))
        #expect(value.jsonText == #""a\"b\\c/d\b\f\n\r\t\u0001é😀""#)
        #expect(try roundTrip(#""\u0000\u001f\u007f""#) == "\"\\u0000\\u001f\u{7f}\"")
    }

    @Test("objects keep member order; repeated keys keep the first position and the last value")
    func memberOrderAndDuplicates() throws {
        #expect(try roundTrip(#"{"b":1,"a":2,"c":3}"#) == #"{"b":1,"a":2,"c":3}"#)
        #expect(try roundTrip(#"{"a":1,"b":2,"a":3}"#) == #"{"a":3,"b":2}"#)
        let many = (0..<20).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        #expect(try roundTrip("{\(many),\"k3\":\"x\"}").contains(#""k3":"x","k4""#))
    }

    @Test("objects compare regardless of member order")
    func objectEquality() throws {
        #expect(try JSONValue(parsing: #"{"a":1,"b":[1,{"c":2,"d":3}]}"#) == JSONValue(parsing: #"{"b":[1,{"d":3,"c":2}],"a":1}"#))
        #expect(try JSONValue(parsing: #"{"a":1}"#) != JSONValue(parsing: #"{"a":1,"b":2}"#))
        #expect(try JSONValue(parsing: "[1,2]") != JSONValue(parsing: "[2,1]"))
    }

    @Test("white space is accepted around every token and dropped on output")
    func whitespace() throws {
        #expect(try roundTrip(" \t\r\n{ \"a\" : [ 1 , true , null ] }\n ") == #"{"a":[1,true,null]}"#)
    }

    @Test(
        "invalid documents give a typed error with the byte offset",
        arguments: [
            ("", JSONParseError.Code.unexpectedEnd, 0),
            ("{", .unexpectedEnd, 1),
            ("[1,]", .unexpectedCharacter, 3),
            ("{\"a\" 1}", .unexpectedCharacter, 5),
            ("{a:1}", .unexpectedCharacter, 1),
            ("01", .invalidNumber, 0),
            ("-", .unexpectedEnd, 1),
            ("1.", .unexpectedEnd, 2),
            ("1.e5", .invalidNumber, 2),
            ("+1", .unexpectedCharacter, 0),
            (".5", .unexpectedCharacter, 0),
            ("tru", .unexpectedEnd, 3),
            ("nul1", .unexpectedCharacter, 3),
            ("\"abc", .unexpectedEnd, 0),
            ("\"a\u{01}\"", .invalidString, 2),
            (#""\x""#, .invalidString, 1),
            (#""\u12G4""#, .invalidString, 5),
            (#""\ud800""#, .invalidString, 1),
            (#""\udc00""#, .invalidString, 1),
            (#""\ud800\u0041""#, .invalidString, 1),
            ("[1] 2", .trailingCharacters, 4),
            ("NaN", .unexpectedCharacter, 0),
        ]
    )
    func invalidDocuments(text: String, code: JSONParseError.Code, offset: Int) throws {
        let error = try #require(parseError(text))
        #expect(error.code == code)
        #expect(error.offset == offset)
        #expect(error.description.hasPrefix("invalid JSON at byte \(offset): "))
    }

    @Test("bytes that are not UTF-8 are refused with their offset")
    func invalidUTF8() throws {
        for bytes: [UInt8] in [[0x22, 0x61, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22]] {
            do {
                _ = try JSONParser().parse(bytes)
                Issue.record("accepted \(bytes)")
            } catch {
                #expect(error.code == .invalidUTF8)
                #expect(error.offset >= 1)
            }
        }
    }

    @Test("nesting deeper than the limit is refused, never a crash")
    func depthLimit() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let error = try #require(parseError(deep))
        #expect(error.code == .tooDeep)
        #expect(error.offset == 256)
        #expect(parseError(String(repeating: "[", count: 256) + String(repeating: "]", count: 256)) == nil)
        let limited = JSONParser.Limits(maxDepth: 3)
        #expect(parseError(#"{"a":{"b":[1]}}"#, limits: limited) == nil)
        #expect(parseError(#"{"a":{"b":[[1]]}}"#, limits: limited)?.code == .tooDeep)
    }

    @Test("documents over the size limit are refused")
    func sizeLimit() throws {
        let error = try #require(parseError("[1,2,3]", limits: .init(maxBytes: 6)))
        #expect(error.code == .tooLarge)
        #expect(parseError("[1,2,3]", limits: .init(maxBytes: 7)) == nil)
    }

    @Test("pretty printing indents and round-trips")
    func prettyPrinting() throws {
        let value = try JSONValue(parsing: #"{"a":[1,{"b":null}],"c":{},"d":[]}"#)
        #expect(value.prettyJSONText == "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": {},\n  \"d\": []\n}")
        #expect(try JSONValue(parsing: value.prettyJSONText) == value)
    }
}
