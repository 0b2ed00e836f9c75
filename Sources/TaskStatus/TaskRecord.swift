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

/// A task as the bridge holds it: its revision, its TaskStatus document, and the hash field value
/// of each property (encoded as the contract's section 1 says), kept side by side so that an update
/// writes only the fields it changed and the reply's JSON is assembled from encoded fields.
public struct TaskRecord: Sendable, Equatable {
    /// The `_rev` field.
    public var rev: Int64
    /// The canonical TaskStatus (see ``TaskStatusSchema/validate(_:)``).
    public private(set) var document: JSONValue
    /// The hash field value of each ``TaskProperty`` (by ``TaskProperty/index``); `nil` when absent.
    public private(set) var fields: [[UInt8]?]

    /// Builds a record from a canonical document.
    public init(rev: Int64, document: JSONValue) {
        self.rev = rev
        self.document = document
        self.fields = TaskProperty.allCases.map { property in document[property.rawValue].flatMap(Self.encode) }
    }

    /// Decodes an `HGETALL` reply. `nil` for an empty hash (no such task).
    public init?(hash: [(field: [UInt8], value: [UInt8])]) throws(CorruptTask) {
        guard !hash.isEmpty else { return nil }
        var raw = [[UInt8]?](repeating: nil, count: TaskProperty.allCases.count)
        var rev: Int64?
        for (field, value) in hash {
            let name = String(decoding: field, as: UTF8.self)
            if name == TaskProperty.revisionField {
                guard let n = Int64(String(decoding: value, as: UTF8.self)), n >= 1 else {
                    throw CorruptTask(field: name, reason: "is not a positive integer")
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

    /// Replaces the document with a new canonical one whose fields differ from the current ones
    /// at most by `changes` (new encodings; `nil`: the field is absent).
    public mutating func update(to newDocument: JSONValue, changes: [(property: TaskProperty, value: [UInt8]?)]) {
        for change in changes { fields[change.property.index] = change.value }
        document = newDocument
    }

    /// The encoded fields of `newDocument` that differ from this record's, among `properties`.
    public func changes(to newDocument: JSONValue, among properties: some Sequence<TaskProperty>) -> [(property: TaskProperty, value: [UInt8]?)] {
        var changes: [(property: TaskProperty, value: [UInt8]?)] = []
        for property in properties {
            let encoded = newDocument[property.rawValue].flatMap(Self.encode)
            if encoded != fields[property.index] { changes.append((property, encoded)) }
        }
        return changes
    }

    /// The compact JSON of the TaskStatus, assembled from the encoded fields.
    public func taskJSON(into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        var first = true
        for property in TaskProperty.allCases {
            let value = fields[property.index]
            if value == nil && !property.isRequired { continue }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: property.rawValue.utf8)
            out.append(contentsOf: "\":".utf8)
            guard let value else {
                out.append(contentsOf: "null".utf8)
                continue
            }
            switch property.kind {
            case .string, .dateTime:
                JSONWriter.writeString(utf8: value, to: &out)
            case .integer, .object, .array:
                out.append(contentsOf: value)
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    /// The compact JSON of the TaskStatus.
    public var taskJSON: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(fields.reduce(400) { $0 + ($1?.count ?? 0) })
        taskJSON(into: &out)
        return out
    }

    /// The hash field encoding of a validated value (`nil` for null: the field is absent): strings
    /// as themselves, integers as decimal text, objects and arrays as compact JSON.
    public static func encode(_ value: JSONValue) -> [UInt8]? {
        switch value {
        case .null: return nil
        case .string(let s): return Array(s.utf8)
        case .integer(let i):
            var out: [UInt8] = []
            JSONWriter.writeInteger(i, to: &out)
            return out
        default: return value.serialized()
        }
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
                return try JSONParser().parse(bytes)
            } catch {
                throw CorruptTask(field: property.rawValue, reason: "is not JSON: \(error)")
            }
        }
    }
}
