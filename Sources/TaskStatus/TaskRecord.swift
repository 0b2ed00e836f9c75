//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import JSONPatch

/// A stored task that cannot be read: the hash misses a required field or holds a value that does
/// not decode. Names the field, so that the log line points at the fix.
public struct CorruptTask: Error, Sendable, Equatable, CustomStringConvertible {
    public let field: String
    public let reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "field \(field) \(reason)" }
}

/// A task as the bridge holds it: its revision and its TaskStatus as canonical compact JSON (the
/// reply body as it goes out), with the place of each property's value in that text. Each hash
/// field is read off the text, and an update patches the text in place (``JSONObjectText``), so
/// that it costs what the patch touches, not what the task holds.
public struct TaskRecord: Sendable, Equatable {
    /// The `_rev` field.
    public var rev: Int64
    /// The TaskStatus as compact JSON: schema order, required properties always present (`null`
    /// when empty), absent optional ones left out.
    public private(set) var json: [UInt8]
    /// For each ``TaskProperty`` (by index), the start and end of its value in `json`; -1 when absent.
    private var bounds: [Int]

    /// Builds a record from a canonical document (see ``TaskStatusSchema/validate(_:)``).
    public init(rev: Int64, document: JSONValue) {
        self.init(rev: rev) { property, out in
            guard let value = document[property.rawValue] else { return false }
            JSONWriter.write(value, to: &out)
            return true
        }
    }

    /// Builds a record from its text and the value range of each property (by ``TaskProperty/index``).
    public init(rev: Int64, json: [UInt8], valueRanges: [Range<Int>?]) {
        self.rev = rev
        self.json = json
        var bounds = [Int](repeating: -1, count: 2 * TaskProperty.allCases.count)
        for (i, range) in valueRanges.enumerated() {
            guard let range else { continue }
            bounds[2 * i] = range.lowerBound
            bounds[2 * i + 1] = range.upperBound
        }
        self.bounds = bounds
    }

    /// Builds a record from its text and the start and end of each property's value (-1 when absent).
    init(rev: Int64, json: [UInt8], bounds: [Int]) {
        self.rev = rev
        self.json = json
        self.bounds = bounds
    }

    /// The property names in schema order.
    public static let names: [String] = TaskProperty.allCases.map(\.rawValue)

    /// Each property's key as JSON with its colon (`"id":`), in schema order.
    public static let keyTexts: [[UInt8]] = TaskProperty.allCases.map { Array("\"\($0.rawValue)\":".utf8) }

    /// Builds a record by writing each property's value (`write` returns false for an absent one).
    public init(rev: Int64, writing write: (TaskProperty, inout [UInt8]) -> Bool) {
        self.rev = rev
        var json: [UInt8] = []
        json.reserveCapacity(1024)
        var bounds = [Int](repeating: -1, count: 2 * TaskProperty.allCases.count)
        json.append(UInt8(ascii: "{"))
        for property in TaskProperty.allCases {
            let mark = json.count
            if json.count > 1 { json.append(UInt8(ascii: ",")) }
            json.append(UInt8(ascii: "\""))
            json.append(contentsOf: property.rawValue.utf8)
            json.append(contentsOf: "\":".utf8)
            let start = json.count
            if write(property, &json) {
                bounds[2 * property.index] = start
                bounds[2 * property.index + 1] = json.count
            } else {
                json.removeSubrange(mark...)
            }
        }
        json.append(UInt8(ascii: "}"))
        self.json = json
        self.bounds = bounds
    }

    /// Decodes an `HGETALL` reply. `nil` for an empty hash (no such task).
    public init?(hash: [(field: [UInt8], value: [UInt8])]) throws(CorruptTask) {
        guard !hash.isEmpty else { return nil }
        var raw = [[UInt8]?](repeating: nil, count: TaskProperty.allCases.count)
        var rev: Int64?
        for (field, value) in hash {
            let name = String(decoding: field, as: UTF8.self)
            if name == TaskProperty.revisionField {
                // Below the largest Int64: an update adds one.
                guard let n = Int64(String(decoding: value, as: UTF8.self)), n >= 1, n < Int64.max else {
                    throw CorruptTask(field: name, reason: "is not a positive integer below 9223372036854775807")
                }
                rev = n
            } else if let property = TaskProperty(name: name) {
                raw[property.index] = value
            }
            // Other fields belong to other services; the TaskStatus ignores them.
        }
        guard let rev else { throw CorruptTask(field: TaskProperty.revisionField, reason: "is missing") }
        var object = JSONObject(minimumCapacity: raw.count)
        for property in TaskProperty.allCases {
            guard let bytes = raw[property.index] else { continue }
            object[property.rawValue] = try Self.decode(bytes, as: property)
        }
        let document: JSONValue
        do {
            document = try TaskStatusSchema.validate(.object(object))
        } catch {
            throw CorruptTask(field: String(error.pointer.dropFirst().prefix { $0 != "/" }), reason: error.reason)
        }
        self.init(rev: rev, document: document)
    }

    /// The TaskStatus as a JSON value.
    public var document: JSONValue {
        // The text is this record's own: it was parsed or written under the ceiling.
        (try? JSONParser.accepted.parse(json)) ?? .null
    }

    /// The compact JSON of the TaskStatus.
    public var taskJSON: [UInt8] { json }

    /// The task's small properties (``TaskProperty/isInSummary``) as a JSON object, in schema order:
    /// what notifications, change-feed entries and stored replies carry instead of the whole task.
    public var summaryJSON: [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(512)
        for property in TaskProperty.allCases where property.isInSummary {
            guard let range = valueRange(property) else { continue }
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: TaskRecord.keyTexts[property.index])
            out.append(contentsOf: json[range])
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Where `property`'s value lies in ``json``.
    public func valueRange(_ property: TaskProperty) -> Range<Int>? {
        let start = bounds[2 * property.index]
        return start < 0 ? nil : start..<bounds[2 * property.index + 1]
    }

    /// The value range of each property by ``TaskProperty/index`` (`nil` when absent).
    public var valueRanges: [Range<Int>?] {
        (0..<TaskProperty.allCases.count).map { i in bounds[2 * i] < 0 ? nil : bounds[2 * i]..<bounds[2 * i + 1] }
    }

    /// Each present member's key and value range, in order (for ``JSONObjectText``).
    public var members: [(key: String, range: Range<Int>)] {
        TaskProperty.allCases.compactMap { property in valueRange(property).map { (property.rawValue, $0) } }
    }

    /// The compact JSON text of `property`'s value; `nil` when the member is absent.
    public func valueText(_ property: TaskProperty) -> ArraySlice<UInt8>? {
        valueRange(property).map { json[$0] }
    }

    /// Calls `body` with the hash field value of `property` (`nil` for an absent field), without
    /// copying it out of the text unless a string holds escapes.
    public func withField<R>(_ property: TaskProperty, _ body: (ArraySlice<UInt8>?) -> R) -> R {
        guard let text = valueText(property), !text.elementsEqual("null".utf8) else { return body(nil) }
        switch property.kind {
        case .string, .dateTime:
            let inner = text.dropFirst().dropLast()
            if !inner.contains(UInt8(ascii: "\\")) { return body(inner) }
            return body(Self.field(fromValueText: text, kind: property.kind).map { $0[...] })
        case .integer, .object, .array:
            return body(text)
        }
    }

    /// The hash field value of `property` (`nil`: the field is absent, for null or a missing member).
    public func field(_ property: TaskProperty) -> [UInt8]? {
        valueRange(property).flatMap { Self.field(fromValueText: json[$0], kind: property.kind) }
    }

    /// The hash field encoding of a value's compact JSON text: strings unquoted and unescaped,
    /// integers, objects and arrays as they are, null as no field.
    public static func field(fromValueText text: ArraySlice<UInt8>, kind: TaskProperty.Kind) -> [UInt8]? {
        if text.elementsEqual("null".utf8) { return nil }
        switch kind {
        case .string, .dateTime:
            guard text.count >= 2 else { return Array(text) }
            let inner = text.dropFirst().dropLast()
            if !inner.contains(UInt8(ascii: "\\")) { return Array(inner) }
            return (try? JSONParser.accepted.parse(Array(text)))?.stringValue.map { Array($0.utf8) } ?? Array(inner)
        case .integer, .object, .array:
            return Array(text)
        }
    }

    /// The hash field encoding of a validated value (`nil` for null: the field is absent).
    public static func encode(_ value: JSONValue) -> [UInt8]? {
        switch value {
        case .null: return nil
        case .string(let s): return Array(s.utf8)
        default: return value.serialized()
        }
    }

    public static func == (lhs: TaskRecord, rhs: TaskRecord) -> Bool {
        lhs.rev == rhs.rev && lhs.json == rhs.json
    }

    static func decode(_ bytes: [UInt8], as property: TaskProperty) throws(CorruptTask) -> JSONValue {
        switch property.kind {
        case .string, .dateTime:
            guard let s = String(validating: bytes, as: UTF8.self) else { throw CorruptTask(field: property.rawValue, reason: "is not UTF-8") }
            return .string(s)
        case .integer:
            guard let n = Int64(String(decoding: bytes, as: UTF8.self)) else {
                throw CorruptTask(field: property.rawValue, reason: "is not a decimal integer")
            }
            return .integer(n)
        case .object, .array:
            do {
                return try JSONParser.accepted.parse(bytes)
            } catch {
                throw CorruptTask(field: property.rawValue, reason: "is not JSON: \(error)")
            }
        }
    }
}
