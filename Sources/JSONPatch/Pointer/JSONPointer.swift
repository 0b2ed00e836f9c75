//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A JSON Pointer (RFC 6901): a path of reference tokens into a document.
///
/// The empty pointer `""` is the whole document; `/a~1b/~0c` has the tokens `a/b` and `~c`.
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible {
    /// The unescaped reference tokens.
    public let tokens: [String]

    /// The whole document.
    public static let root = JSONPointer(tokens: [])

    public init(tokens: [String]) {
        self.tokens = tokens
    }

    /// Parses pointer text, decoding `~0` and `~1`.
    public init(_ text: String) throws(JSONPointerError) {
        if text.isEmpty {
            tokens = []
            return
        }
        guard text.utf8.first == UInt8(ascii: "/") else {
            throw JSONPointerError(
                code: .invalidSyntax,
                pointer: text,
                tokenIndex: nil,
                reason: "a JSON Pointer must be empty or start with '/'"
            )
        }
        // Tokens are cut straight out of the text: patch paths are parsed for every request.
        var result: [String] = []
        let utf8 = text.utf8
        var start = utf8.index(after: utf8.startIndex)
        var index = 0
        while true {
            var end = start
            var escaped = false
            while end < utf8.endIndex, utf8[end] != UInt8(ascii: "/") {
                if utf8[end] == UInt8(ascii: "~") { escaped = true }
                end = utf8.index(after: end)
            }
            let part = utf8[start..<end]
            result.append(escaped ? try Self.unescape(part, index: index, pointer: text) : String(Substring(part)))
            guard end < utf8.endIndex else { break }
            start = utf8.index(after: end)
            index += 1
        }
        tokens = result
    }

    /// Decodes `~0` and `~1` in one token.
    private static func unescape(_ part: Substring.UTF8View, index: Int, pointer text: String) throws(JSONPointerError) -> String {
        var decoded: [UInt8] = []
        var iterator = part.makeIterator()
        while let b = iterator.next() {
            guard b == UInt8(ascii: "~") else {
                decoded.append(b)
                continue
            }
            switch iterator.next() {
            case UInt8(ascii: "0"): decoded.append(UInt8(ascii: "~"))
            case UInt8(ascii: "1"): decoded.append(UInt8(ascii: "/"))
            default:
                throw JSONPointerError(
                    code: .invalidSyntax,
                    pointer: text,
                    tokenIndex: index,
                    reason: "'~' must be followed by '0' or '1' (token \(index) is \"\(String(Substring(part)))\")"
                )
            }
        }
        return String(decoding: decoded, as: UTF8.self)
    }

    /// The pointer as text, with `~` and `/` escaped.
    public var description: String {
        var out = ""
        for token in tokens {
            out += "/"
            out += Self.escape(token)
        }
        return out
    }

    /// Escapes one reference token (`~` as `~0`, `/` as `~1`).
    public static func escape(_ token: String) -> String {
        guard token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return token }
        return token.replacing("~", with: "~0").replacing("/", with: "~1")
    }

    /// The pointer to the parent location; the root's parent is the root.
    public var parent: JSONPointer { JSONPointer(tokens: Array(tokens.dropLast())) }

    /// The pointer made of the first `count` tokens.
    public func prefix(_ count: Int) -> JSONPointer { JSONPointer(tokens: Array(tokens.prefix(count))) }

    /// Whether `self` is `other` or lies inside it.
    public func hasPrefix(_ other: JSONPointer) -> Bool {
        other.tokens.count <= tokens.count && tokens.starts(with: other.tokens)
    }

    /// Appends a token.
    public func appending(_ token: String) -> JSONPointer { JSONPointer(tokens: tokens + [token]) }

    /// Reads an array index token: decimal digits without leading zeros (RFC 6901 section 4).
    /// `nil` for anything else, `-` included.
    public static func arrayIndex(_ token: String) -> Int? {
        let utf8 = token.utf8
        guard let first = utf8.first, utf8.count <= 18 else { return nil }
        if first == UInt8(ascii: "0") { return utf8.count == 1 ? 0 : nil }
        var value = 0
        for b in utf8 {
            guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(b - UInt8(ascii: "0"))
        }
        return value
    }

    /// Resolves the pointer in `document`; `nil` when the location does not exist.
    public func evaluate(in document: JSONValue) -> JSONValue? {
        try? resolve(in: document)
    }

    /// Resolves the pointer in `document`, or says which token failed and why.
    public func resolve(in document: JSONValue) throws(JSONPointerError) -> JSONValue {
        var current = document
        for (i, token) in tokens.enumerated() {
            switch current {
            case .object(let object):
                guard let value = object[token] else {
                    throw JSONPointerError(code: .notFound, pointer: description, tokenIndex: i, reason: missingMember(token, at: i))
                }
                current = value
            case .array(let array):
                let index = try arrayIndex(token, at: i, count: array.count, allowEnd: false)
                current = array[index]
            default:
                throw JSONPointerError(
                    code: .notAContainer,
                    pointer: description,
                    tokenIndex: i,
                    reason: notAContainer(typeName: current.typeName, at: i)
                )
            }
        }
        return current
    }

    /// How messages name the location of the first `i` tokens.
    func location(_ i: Int, _ noun: String) -> String {
        i == 0 ? "the document" : "the \(noun) at \"\(prefix(i))\""
    }

    func missingMember(_ token: String, at i: Int) -> String {
        "\(location(i, "object")) has no member \"\(token)\""
    }

    func notAContainer(typeName: String, at i: Int) -> String {
        "\(location(i, "value")) is \(JSONValue.describe(typeName: typeName)), not an object or array, so it has no \"\(tokens[i])\""
    }

    /// Checks token `i` as an index into an array of `count` elements. `allowEnd` admits `count`
    /// itself and `-` (where `add` inserts).
    func arrayIndex(_ token: String, at i: Int, count: Int, allowEnd: Bool) throws(JSONPointerError) -> Int {
        if token == "-" {
            if allowEnd { return count }
            throw JSONPointerError(
                code: .notFound,
                pointer: description,
                tokenIndex: i,
                reason: "\"-\" (after the last element) names no existing element of \(location(i, "array"))"
            )
        }
        guard let index = Self.arrayIndex(token) else {
            throw JSONPointerError(
                code: .invalidArrayIndex,
                pointer: description,
                tokenIndex: i,
                reason: "\"\(token)\" is not an array index (digits without leading zeros) for \(location(i, "array"))"
            )
        }
        let limit = allowEnd ? count : count - 1
        guard index <= limit else {
            throw JSONPointerError(
                code: .notFound,
                pointer: description,
                tokenIndex: i,
                reason: "index \(index) is out of bounds for \(location(i, "array")) of \(count) element\(count == 1 ? "" : "s")"
            )
        }
        return index
    }
}

/// A pointer that cannot be parsed or resolved; `tokenIndex` is the failing token (0-based).
public struct JSONPointerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure; new kinds may be added.
    public struct Code: Hashable, Sendable {
        private enum Base { case invalidSyntax, notFound, invalidArrayIndex, notAContainer }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The text is not a JSON Pointer (no leading `/`, a bad `~` escape).
        public static let invalidSyntax = Code(.invalidSyntax)
        /// A member or element that does not exist.
        public static let notFound = Code(.notFound)
        /// A token that is not a valid index into the array it meets.
        public static let invalidArrayIndex = Code(.invalidArrayIndex)
        /// A token that meets a string, number, boolean or null.
        public static let notAContainer = Code(.notAContainer)
    }

    public let code: Code
    public let pointer: String
    public let tokenIndex: Int?
    public let reason: String

    public init(code: Code, pointer: String, tokenIndex: Int?, reason: String) {
        self.code = code
        self.pointer = pointer
        self.tokenIndex = tokenIndex
        self.reason = reason
    }

    public var description: String { "invalid JSON Pointer \"\(pointer)\": \(reason)" }
}
