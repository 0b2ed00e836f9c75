//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A JSON value (RFC 8259) that round-trips through ``JSONParser`` and ``JSONValue/serialized()``
/// without loss: integers stay exact, other numbers keep their literal text, objects keep their
/// member order.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// An integer literal that fits in 64 bits (no fraction, no exponent, not `-0`).
    case integer(Int64)
    /// Any other number, kept as its literal text so that nothing is lost.
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The name of the value's JSON type, as error messages use it.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .integer, .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// The type with its article, as error messages use it: "an object", "a string", "null".
    public var describedType: String { Self.describe(typeName: typeName) }

    static func describe(typeName: String) -> String {
        switch typeName {
        case "null": return "null"
        case "object", "array": return "an \(typeName)"
        default: return "a \(typeName)"
        }
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Whether the value is an array or an object.
    public var isContainer: Bool {
        switch self {
        case .array, .object: return true
        default: return false
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The value as an exact 64-bit integer: an integer literal, or a number literal such as `3.0`
    /// or `1e2` whose value is integral and in range.
    public var int64Value: Int64? {
        switch self {
        case .integer(let i): return i
        case .number(let n): return n.exactInt64
        default: return nil
        }
    }

    /// Member lookup on an object; `nil` for a missing member or a value that is not an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
}

extension JSONValue: Equatable {
    /// JSON equality as RFC 6902's `test` defines it: numbers compare by value (`1 == 1.0`),
    /// objects compare regardless of member order, arrays element by element.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.integer(let a), .integer(let b)): return a == b
        case (.integer(let a), .number(let b)): return b.isEqual(toInteger: a)
        case (.number(let a), .integer(let b)): return a.isEqual(toInteger: b)
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        default: return false
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    /// A float literal becomes a number with the literal's shortest decimal text.
    public init(floatLiteral value: Double) { self = .number(JSONNumber(unchecked: "\(value)")) }
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}

extension JSONValue: CustomStringConvertible {
    /// The compact JSON text of the value.
    public var description: String { jsonText }
}
