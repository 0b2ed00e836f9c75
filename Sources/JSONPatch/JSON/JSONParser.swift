//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A strict RFC 8259 parser working directly on UTF-8 bytes.
///
/// Every failure is a ``JSONParseError`` with the byte offset; hostile input (deep nesting,
/// huge documents, bad UTF-8, lone surrogates) is refused, never a crash. Duplicate object keys
/// keep the position of the first and the value of the last, as ECMAScript's `JSON.parse` does.
public struct JSONParser: Sendable {
    /// Bounds on what the parser accepts.
    public struct Limits: Sendable, Equatable {
        /// Deepest nesting of arrays and objects; the top-level value is depth 1.
        public var maxDepth: Int
        /// Longest input, in bytes.
        public var maxBytes: Int

        /// The largest nesting depth that can be configured: deeper recursion could exhaust the
        /// stack of a secondary thread.
        public static let depthCeiling = 4096

        public init(maxDepth: Int = 256, maxBytes: Int = 64 << 20) {
            self.maxDepth = min(max(1, maxDepth), Self.depthCeiling)
            self.maxBytes = max(0, maxBytes)
        }
    }

    public var limits: Limits

    /// A parser for text that was accepted once already (a patch value parsed under the request
    /// limits, a stored task this program wrote): the ceiling, not the default limits, so that a
    /// value allowed in is always read back. (`--max-depth` may allow more than the default.)
    public static let accepted = JSONParser(limits: Limits(maxDepth: Limits.depthCeiling, maxBytes: .max))

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Parses one JSON text.
    public func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        try parse(bytes, in: bytes.startIndex..<bytes.endIndex)
    }

    /// Parses one JSON text held in `bytes[range]`; offsets in errors count from `range.lowerBound`.
    public func parse(_ bytes: [UInt8], in range: Range<Int>) throws(JSONParseError) -> JSONValue {
        if range.count > limits.maxBytes {
            throw JSONParseError(
                code: .tooLarge,
                offset: limits.maxBytes,
                message: "the document is \(range.count) bytes, over the limit of \(limits.maxBytes)"
            )
        }
        var reader = Reader(bytes: bytes, start: range.lowerBound, end: range.upperBound, maxDepth: limits.maxDepth)
        reader.skipWhitespace()
        let value = try reader.parseValue(depth: 0)
        reader.skipWhitespace()
        if reader.pos < reader.end {
            throw reader.error(.trailingCharacters, "unexpected \(reader.describeByte()) after the end of the document")
        }
        return value
    }

    /// Parses one JSON text.
    public func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    /// Reads the JSON string whose opening quote is at `position`; returns it and the position
    /// after its closing quote.
    static func parseString(in bytes: [UInt8], at position: Int, end: Int) throws(JSONParseError) -> (String, Int) {
        var reader = Reader(bytes: bytes, start: position, end: end, maxDepth: 1)
        let string = try reader.parseString()
        return (string, reader.pos)
    }
}

extension JSONValue {
    /// Parses a JSON text with the default limits.
    public init(parsing text: String) throws(JSONParseError) {
        self = try JSONParser().parse(text)
    }

    /// Parses JSON bytes with the default limits.
    public init(parsing bytes: [UInt8]) throws(JSONParseError) {
        self = try JSONParser().parse(bytes)
    }
}

private enum Byte {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let lowerE = UInt8(ascii: "e")
    static let upperE = UInt8(ascii: "E")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
}

/// The parser's cursor; one per parse, never shared.
private struct Reader {
    let bytes: [UInt8]
    let start: Int
    let end: Int
    let maxDepth: Int
    var pos: Int

    init(bytes: [UInt8], start: Int, end: Int, maxDepth: Int) {
        self.bytes = bytes
        self.start = start
        self.end = end
        self.maxDepth = maxDepth
        self.pos = start
    }

    func error(_ code: JSONParseError.Code, _ message: String, at position: Int? = nil) -> JSONParseError {
        JSONParseError(code: code, offset: (position ?? pos) - start, message: message)
    }

    func describeByte(at position: Int? = nil) -> String {
        let p = position ?? pos
        guard p < end else { return "end of input" }
        let b = bytes[p]
        if b >= 0x20 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x\(String(b, radix: 16, uppercase: true))"
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while pos < end {
            let b = bytes[pos]
            guard b == Byte.space || b == Byte.newline || b == Byte.carriageReturn || b == Byte.tab else { return }
            pos += 1
        }
    }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard pos < end else { throw error(.unexpectedEnd, "expected a value, found the end of input") }
        switch bytes[pos] {
        case Byte.quote:
            return .string(try parseString())
        case Byte.openBrace:
            return try parseObject(depth: depth + 1)
        case Byte.openBracket:
            return try parseArray(depth: depth + 1)
        case Byte.minus, Byte.zero...Byte.nine:
            return try parseNumber()
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        default:
            throw error(.unexpectedCharacter, "expected a value, found \(describeByte())")
        }
    }

    mutating func expectLiteral(_ literal: String) throws(JSONParseError) {
        var k = pos
        for expected in literal.utf8 {
            guard k < end else { throw error(.unexpectedEnd, "unexpected end of input inside '\(literal)'", at: k) }
            guard bytes[k] == expected else {
                throw error(.unexpectedCharacter, "expected '\(literal)', found \(describeByte(at: k))", at: k)
            }
            k += 1
        }
        pos = k
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > maxDepth {
            throw error(.tooDeep, "arrays and objects nest deeper than the limit of \(maxDepth)")
        }
        pos += 1
        skipWhitespace()
        if pos < end, bytes[pos] == Byte.closeBracket {
            pos += 1
            return .array([])
        }
        var elements: [JSONValue] = []
        elements.reserveCapacity(4)
        while true {
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard pos < end else { throw error(.unexpectedEnd, "unexpected end of input inside an array") }
            let b = bytes[pos]
            pos += 1
            if b == Byte.comma {
                skipWhitespace()
                continue
            }
            if b == Byte.closeBracket { return .array(elements) }
            throw error(.unexpectedCharacter, "expected ',' or ']' in an array, found \(describeByte(at: pos - 1))", at: pos - 1)
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > maxDepth {
            throw error(.tooDeep, "arrays and objects nest deeper than the limit of \(maxDepth)")
        }
        pos += 1
        skipWhitespace()
        if pos < end, bytes[pos] == Byte.closeBrace {
            pos += 1
            return .object(JSONObject())
        }
        var members: [JSONObject.Member] = []
        members.reserveCapacity(4)
        while true {
            guard pos < end else { throw error(.unexpectedEnd, "unexpected end of input inside an object") }
            guard bytes[pos] == Byte.quote else {
                throw error(.unexpectedCharacter, "expected a member name in quotes, found \(describeByte())")
            }
            let key = try parseString()
            skipWhitespace()
            guard pos < end else { throw error(.unexpectedEnd, "unexpected end of input inside an object") }
            guard bytes[pos] == Byte.colon else {
                throw error(.unexpectedCharacter, "expected ':' after a member name, found \(describeByte())")
            }
            pos += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            members.append(JSONObject.Member(key: key, value: value))
            skipWhitespace()
            guard pos < end else { throw error(.unexpectedEnd, "unexpected end of input inside an object") }
            let b = bytes[pos]
            pos += 1
            if b == Byte.comma {
                skipWhitespace()
                continue
            }
            if b == Byte.closeBrace { break }
            throw error(.unexpectedCharacter, "expected ',' or '}' in an object, found \(describeByte(at: pos - 1))", at: pos - 1)
        }
        if members.count > 1 { Self.mergeDuplicateKeys(&members) }
        return .object(JSONObject(uniqueMembers: members))
    }

    /// Keeps the first position and the last value of each repeated key.
    static func mergeDuplicateKeys(_ members: inout [JSONObject.Member]) {
        let n = members.count
        var hasDuplicate = false
        if n <= 12 {
            outer: for i in 1..<n {
                for j in 0..<i where members[j].key == members[i].key {
                    hasDuplicate = true
                    break outer
                }
            }
        } else {
            var seen = Set<String>(minimumCapacity: n)
            for m in members where !seen.insert(m.key).inserted {
                hasDuplicate = true
                break
            }
        }
        guard hasDuplicate else { return }
        var merged: [JSONObject.Member] = []
        var position: [String: Int] = [:]
        for m in members {
            if let p = position[m.key] {
                merged[p].value = m.value
            } else {
                position[m.key] = merged.count
                merged.append(m)
            }
        }
        members = merged
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let first = pos
        var negative = false
        if bytes[pos] == Byte.minus {
            negative = true
            pos += 1
        }
        guard pos < end, bytes[pos] >= Byte.zero, bytes[pos] <= Byte.nine else {
            if pos >= end { throw error(.unexpectedEnd, "unexpected end of input inside a number") }
            throw error(.invalidNumber, "expected a digit after '-', found \(describeByte())")
        }
        let intStart = pos
        var magnitude: UInt64 = 0
        if bytes[pos] == Byte.zero {
            pos += 1
            if pos < end, bytes[pos] >= Byte.zero, bytes[pos] <= Byte.nine {
                throw error(.invalidNumber, "numbers cannot have leading zeros", at: intStart)
            }
        } else {
            while pos < end {
                let d = bytes[pos] &- Byte.zero
                guard d <= 9 else { break }
                magnitude = magnitude &* 10 &+ UInt64(d)
                pos += 1
            }
        }
        let intDigits = pos - intStart
        var isInteger = true
        if pos < end, bytes[pos] == Byte.dot {
            isInteger = false
            pos += 1
            let fracStart = pos
            while pos < end, bytes[pos] >= Byte.zero, bytes[pos] <= Byte.nine { pos += 1 }
            if pos == fracStart {
                if pos >= end { throw error(.unexpectedEnd, "unexpected end of input inside a number") }
                throw error(.invalidNumber, "expected a digit after '.', found \(describeByte())")
            }
        }
        if pos < end, bytes[pos] == Byte.lowerE || bytes[pos] == Byte.upperE {
            isInteger = false
            pos += 1
            if pos < end, bytes[pos] == Byte.plus || bytes[pos] == Byte.minus { pos += 1 }
            let expStart = pos
            while pos < end, bytes[pos] >= Byte.zero, bytes[pos] <= Byte.nine { pos += 1 }
            if pos == expStart {
                if pos >= end { throw error(.unexpectedEnd, "unexpected end of input inside a number") }
                throw error(.invalidNumber, "expected a digit in the exponent, found \(describeByte())")
            }
        }
        // Up to 19 digits the accumulator is exact (10^19 - 1 < 2^64). "-0" keeps its sign by
        // staying a literal.
        if isInteger && intDigits <= 19 && !(negative && magnitude == 0) {
            if !negative, magnitude <= UInt64(Int64.max) { return .integer(Int64(magnitude)) }
            if negative, magnitude <= UInt64(Int64.max) + 1 { return .integer(Int64(bitPattern: 0 &- magnitude)) }
        }
        return .number(JSONNumber(unchecked: String(decoding: bytes[first..<pos], as: UTF8.self)))
    }

    mutating func parseString() throws(JSONParseError) -> String {
        let open = pos
        pos += 1
        let contentStart = pos
        let (stop, ascii) = Self.scanPlainString(bytes.span, from: pos, to: end)
        pos = stop
        guard pos < end else { throw error(.unexpectedEnd, "unterminated string", at: open) }
        let b = bytes[pos]
        if b == Byte.quote {
            let text = try makeString(contentStart..<pos, ascii: ascii)
            pos += 1
            return text
        }
        if b == Byte.backslash { return try parseEscapedString(contentStart: contentStart, open: open) }
        throw error(.invalidString, "control character 0x\(String(b, radix: 16, uppercase: true)) must be escaped in a string")
    }

    /// Finds the first quote, backslash or control character at or after `from`; also says
    /// whether everything before it was ASCII.
    @inline(__always)
    static func scanPlainString(_ span: Span<UInt8>, from: Int, to end: Int) -> (Int, Bool) {
        var i = from
        var high: UInt8 = 0
        while i < end {
            let b = span[i]
            if b == Byte.quote || b == Byte.backslash || b < 0x20 { break }
            high |= b
            i += 1
        }
        return (i, high < 0x80)
    }

    func makeString(_ range: Range<Int>, ascii: Bool) throws(JSONParseError) -> String {
        if ascii { return String(decoding: bytes[range], as: UTF8.self) }
        guard let s = String(validating: bytes[range], as: UTF8.self) else {
            throw error(.invalidUTF8, "a string holds bytes that are not UTF-8", at: firstInvalidUTF8(in: range))
        }
        return s
    }

    func firstInvalidUTF8(in range: Range<Int>) -> Int {
        var i = range.lowerBound
        while i < range.upperBound {
            let b = bytes[i]
            let length: Int
            switch b {
            case 0x00...0x7F: length = 1
            case 0xC2...0xDF: length = 2
            case 0xE0...0xEF: length = 3
            case 0xF0...0xF4: length = 4
            default: return i
            }
            if i + length > range.upperBound { return i }
            if String(validating: bytes[i..<(i + length)], as: UTF8.self) == nil { return i }
            i += length
        }
        return range.lowerBound
    }

    mutating func parseEscapedString(contentStart: Int, open: Int) throws(JSONParseError) -> String {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(pos - contentStart + 16)
        buffer.append(contentsOf: bytes[contentStart..<pos])
        while pos < end {
            let b = bytes[pos]
            if b == Byte.quote {
                pos += 1
                guard let s = String(validating: buffer, as: UTF8.self) else {
                    throw error(.invalidUTF8, "a string holds bytes that are not UTF-8", at: open)
                }
                return s
            }
            if b < 0x20 {
                throw error(.invalidString, "control character 0x\(String(b, radix: 16, uppercase: true)) must be escaped in a string")
            }
            if b != Byte.backslash {
                buffer.append(b)
                pos += 1
                continue
            }
            let escapeStart = pos
            pos += 1
            guard pos < end else { break }
            let e = bytes[pos]
            pos += 1
            switch e {
            case Byte.quote: buffer.append(Byte.quote)
            case Byte.backslash: buffer.append(Byte.backslash)
            case Byte.slash: buffer.append(Byte.slash)
            case UInt8(ascii: "b"): buffer.append(0x08)
            case UInt8(ascii: "f"): buffer.append(0x0C)
            case UInt8(ascii: "n"): buffer.append(0x0A)
            case UInt8(ascii: "r"): buffer.append(0x0D)
            case UInt8(ascii: "t"): buffer.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try readHex4(escapeStart: escapeStart)
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard pos + 1 < end, bytes[pos] == Byte.backslash, bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw error(.invalidString, "lone UTF-16 high surrogate \\u\(hex4(scalar)) without its low half", at: escapeStart)
                    }
                    pos += 2
                    let low = try readHex4(escapeStart: pos - 2)
                    guard low >= 0xDC00 && low <= 0xDFFF else {
                        throw error(
                            .invalidString,
                            "UTF-16 high surrogate \\u\(hex4(scalar)) is followed by \\u\(hex4(low)), not a low surrogate",
                            at: escapeStart
                        )
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                    throw error(.invalidString, "lone UTF-16 low surrogate \\u\(hex4(scalar))", at: escapeStart)
                }
                appendUTF8(scalar, to: &buffer)
            default:
                throw error(.invalidString, "invalid escape '\\\(Character(Unicode.Scalar(e)))' in a string", at: escapeStart)
            }
        }
        throw error(.unexpectedEnd, "unterminated string", at: open)
    }

    mutating func readHex4(escapeStart: Int) throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard pos < end else { throw error(.unexpectedEnd, "unexpected end of input inside a \\u escape") }
            let b = bytes[pos]
            let digit: UInt8
            switch b {
            case Byte.zero...Byte.nine: digit = b - Byte.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default:
                throw error(.invalidString, "a \\u escape needs four hex digits, found \(describeByte())", at: pos)
            }
            value = value << 4 | UInt32(digit)
            pos += 1
        }
        return value
    }

    func hex4(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    func appendUTF8(_ scalar: UInt32, to buffer: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            buffer.append(UInt8(scalar))
        case 0x80..<0x800:
            buffer.append(UInt8(0xC0 | (scalar >> 6)))
            buffer.append(UInt8(0x80 | (scalar & 0x3F)))
        case 0x800..<0x10000:
            buffer.append(UInt8(0xE0 | (scalar >> 12)))
            buffer.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            buffer.append(UInt8(0x80 | (scalar & 0x3F)))
        default:
            buffer.append(UInt8(0xF0 | (scalar >> 18)))
            buffer.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
            buffer.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            buffer.append(UInt8(0x80 | (scalar & 0x3F)))
        }
    }
}

extension JSONParser {
    /// Reads a JSON Patch document straight into operations, without building the operation
    /// objects as JSON values first: what every request costs. `nil` for anything but a plain
    /// well-formed patch (bad JSON, a repeated or missing member, an unknown `op`, a pointer with
    /// escapes): ``JSONPatch/init(parsing:parser:)`` then reads it the general way and words the error.
    func patchOperations(_ bytes: [UInt8]) -> [JSONPatchOperation]? {
        patchOperations(bytes, in: bytes.startIndex..<bytes.endIndex)
    }

    /// ``patchOperations(_:)`` for the patch text held in `bytes[range]`.
    func patchOperations(_ bytes: [UInt8], in range: Range<Int>) -> [JSONPatchOperation]? {
        guard range.count <= limits.maxBytes else { return nil }
        var reader = Reader(bytes: bytes, start: range.lowerBound, end: range.upperBound, maxDepth: limits.maxDepth)
        do {
            reader.skipWhitespace()
            guard reader.pos < reader.end, bytes[reader.pos] == Byte.openBracket else { return nil }
            reader.pos += 1
            reader.skipWhitespace()
            var operations: [JSONPatchOperation] = []
            // Patches have a few operations: one allocation, not one per doubling.
            operations.reserveCapacity(4)
            if reader.pos < reader.end, bytes[reader.pos] == Byte.closeBracket {
                reader.pos += 1
            } else {
                while true {
                    guard let operation = try reader.patchOperation() else { return nil }
                    operations.append(operation)
                    reader.skipWhitespace()
                    guard reader.pos < reader.end else { return nil }
                    let b = bytes[reader.pos]
                    reader.pos += 1
                    if b == Byte.closeBracket { break }
                    guard b == Byte.comma else { return nil }
                    reader.skipWhitespace()
                }
            }
            reader.skipWhitespace()
            return reader.pos == reader.end ? operations : nil
        } catch {
            return nil
        }
    }
}

extension Reader {
    /// One operation object at depth 2; `nil` when it is not a plain valid one.
    fileprivate mutating func patchOperation() throws(JSONParseError) -> JSONPatchOperation? {
        guard maxDepth >= 2, pos < end, bytes[pos] == Byte.openBrace else { return nil }
        pos += 1
        var op: String?
        var path: JSONPointer?
        var from: JSONPointer?
        var value: JSONValue?
        var others: [String] = []
        skipWhitespace()
        if pos < end, bytes[pos] == Byte.closeBrace { return nil }
        while true {
            guard pos < end, bytes[pos] == Byte.quote else { return nil }
            let key: String
            if let word = plainWord() { key = word } else { key = try parseString() }
            skipWhitespace()
            guard pos < end, bytes[pos] == Byte.colon else { return nil }
            pos += 1
            skipWhitespace()
            switch key {
            case "op":
                guard op == nil, pos < end, bytes[pos] == Byte.quote else { return nil }
                if let word = plainWord() { op = word } else { op = try parseString() }
            case "path":
                guard path == nil, let pointer = try pointer() else { return nil }
                path = pointer
            case "from":
                guard from == nil, let pointer = try pointer() else { return nil }
                from = pointer
            case "value":
                guard value == nil else { return nil }
                value = try parseValue(depth: 2)
            default:
                // Other members are allowed and ignored, as RFC 6902 says; repeated ones are left
                // to the general reader, which keeps the last.
                guard !others.contains(key) else { return nil }
                others.append(key)
                _ = try parseValue(depth: 2)
            }
            skipWhitespace()
            guard pos < end else { return nil }
            let b = bytes[pos]
            pos += 1
            if b == Byte.closeBrace { break }
            guard b == Byte.comma else { return nil }
            skipWhitespace()
        }
        guard let op, let path else { return nil }
        switch op {
        case "add": return value.map { .add(path: path, value: $0) }
        case "remove": return .remove(path: path)
        case "replace": return value.map { .replace(path: path, value: $0) }
        case "test": return value.map { .test(path: path, value: $0) }
        case "move": return from.map { .move(from: $0, path: path) }
        case "copy": return from.map { .copy(from: $0, path: path) }
        default: return nil
        }
    }

    /// The string at the cursor when it is one of the words of a patch (member names and `op`
    /// values), read without building a new string; `nil`, the cursor unmoved, for any other.
    fileprivate mutating func plainWord() -> String? {
        let start = pos + 1
        var i = start
        while i < end, i - start <= 7, bytes[i] != Byte.quote { i += 1 }
        guard i < end, bytes[i] == Byte.quote else { return nil }
        let word: String
        switch i - start {
        case 2 where bytes[start] == UInt8(ascii: "o") && bytes[start + 1] == UInt8(ascii: "p"): word = "op"
        case 3 where Self.matches(bytes, start, "add"): word = "add"
        case 4 where Self.matches(bytes, start, "path"): word = "path"
        case 4 where Self.matches(bytes, start, "from"): word = "from"
        case 4 where Self.matches(bytes, start, "test"): word = "test"
        case 4 where Self.matches(bytes, start, "move"): word = "move"
        case 4 where Self.matches(bytes, start, "copy"): word = "copy"
        case 5 where Self.matches(bytes, start, "value"): word = "value"
        case 6 where Self.matches(bytes, start, "remove"): word = "remove"
        case 7 where Self.matches(bytes, start, "replace"): word = "replace"
        default: return nil
        }
        pos = i + 1
        return word
    }

    private static func matches(_ bytes: [UInt8], _ start: Int, _ word: StaticString) -> Bool {
        word.withUTF8Buffer { expected in
            for k in 0..<expected.count where bytes[start + k] != expected[k] { return false }
            return true
        }
    }

    /// A JSON Pointer string cut into tokens straight from the bytes; `nil` when it needs more
    /// than that (escapes, `~`, bytes beyond printable ASCII) or is not a pointer.
    fileprivate mutating func pointer() throws(JSONParseError) -> JSONPointer? {
        guard pos < end, bytes[pos] == Byte.quote else { return nil }
        let open = pos
        var i = pos + 1
        while i < end {
            let b = bytes[i]
            if b == Byte.quote { break }
            guard b >= 0x20, b < 0x7F, b != Byte.backslash, b != UInt8(ascii: "~") else { return nil }
            i += 1
        }
        guard i < end else { return nil }
        pos = i + 1
        if i == open + 1 { return .root }
        guard bytes[open + 1] == Byte.slash else { return nil }
        var tokens: [String] = []
        var start = open + 2
        var k = start
        while k <= i {
            if k == i || bytes[k] == Byte.slash {
                tokens.append(String(decoding: bytes[start..<k], as: UTF8.self))
                start = k + 1
            }
            k += 1
        }
        return JSONPointer(tokens: tokens)
    }
}
