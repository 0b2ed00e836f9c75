//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import JSONPatch

/// A document that breaks the TaskStatus schema: where (a JSON Pointer) and why.
public struct SchemaViolation: Error, Sendable, Equatable, CustomStringConvertible {
    public let pointer: String
    public let reason: String

    public init(pointer: String, reason: String) {
        self.pointer = pointer
        self.reason = reason
    }

    public var description: String { "the result is not a valid TaskStatus: \(pointer.isEmpty ? "the document" : pointer) \(reason)" }
}

/// The TaskStatus schema (SailPoint's, as the contract's section 2 states it) and the checks every
/// update must pass.
public enum TaskStatusSchema {
    static let messageTypes = ["INFO", "WARN", "ERROR"]
    static let targetTypes = ["APPLICATION", "IDENTITY"]

    /// Checks a whole TaskStatus and returns its canonical form: members in schema order, enum
    /// values in upper case, a missing nullable property as `null`, an optional property that is
    /// `null` left out.
    public static func validate(_ document: JSONValue) throws(SchemaViolation) -> JSONValue {
        guard case .object(let object) = document else {
            throw SchemaViolation(pointer: "", reason: "must be an object, not \(document.describedType)")
        }
        for member in object where TaskProperty(name: member.key) == nil {
            throw SchemaViolation(pointer: "/" + JSONPointer.escape(member.key), reason: "is not a TaskStatus property")
        }
        var canonical = JSONObject(minimumCapacity: TaskProperty.allCases.count)
        for property in TaskProperty.allCases {
            if let value = try canonicalMember(object[property.rawValue], of: property) { canonical.append(property.rawValue, value) }
        }
        return .object(canonical)
    }

    /// Checks the top-level members an update touched (`nil`: all of them) of a document whose
    /// other members were valid before, and returns the document with those members canonical.
    /// A touched nullable property that is missing becomes `null` (or is left out when optional).
    public static func validate(_ document: JSONValue, touched: Set<String>?) throws(SchemaViolation) -> JSONValue {
        guard let touched else { return try validate(document) }
        guard case .object(var object) = document else {
            throw SchemaViolation(pointer: "", reason: "must be an object, not \(document.describedType)")
        }
        // Schema order, then unknown names sorted, so that the first violation reported is stable.
        let known = TaskProperty.allCases.map(\.rawValue).filter { touched.contains($0) }
        for name in known + touched.filter({ TaskProperty(name: $0) == nil }).sorted() {
            let pointer = "/" + JSONPointer.escape(name)
            guard let property = TaskProperty(name: name) else {
                if object[name] != nil { throw SchemaViolation(pointer: pointer, reason: "is not a TaskStatus property") }
                continue
            }
            object[name] = try canonicalMember(object[name], of: property)
        }
        return .object(object)
    }

    /// Checks one member of a document (`nil`: the member is missing) and returns its canonical
    /// form, or `nil` when the member is left out: a missing or null nullable property is `null`
    /// when required and left out when optional; any other property must hold a valid value.
    public static func canonicalMember(_ value: JSONValue?, of property: TaskProperty) throws(SchemaViolation) -> JSONValue? {
        guard let value, !value.isNull else {
            guard property.isNullable else {
                throw SchemaViolation(pointer: "/\(property.rawValue)", reason: value == nil ? "is required" : "cannot be null")
            }
            return property.isRequired ? .null : nil
        }
        try checkDepth(value, below: 1, at: "/\(property.rawValue)")
        return try validate(value, as: property)
    }

    /// How deep a stored document may nest: what ``JSONParser/accepted`` reads back. A patch may
    /// build a deeper value than it carries (a deep value added deep inside a property), and a
    /// task stored that deep could never be read again.
    public static let maxDocumentDepth = JSONParser.Limits.depthCeiling

    /// Refuses a value that would nest deeper than ``maxDocumentDepth`` under `levels` levels of
    /// the document. Walks containers only, without recursion.
    static func checkDepth(_ value: JSONValue, below levels: Int, at pointer: @autoclosure () -> String) throws(SchemaViolation) {
        // Nearly every value is a few levels deep: checked by a short recursion that allocates
        // nothing; only a deep one takes the walk with a stack of its own.
        guard value.isContainer, !isShallow(value, within: 32) else { return }
        let allowed = maxDocumentDepth - levels
        var stack: [(value: JSONValue, depth: Int)] = []
        var next: (value: JSONValue, depth: Int)? = (value, 1)
        while let (current, depth) = next {
            switch current {
            case .array(let items):
                guard depth <= allowed else { throw depthViolation(pointer(), allowed) }
                for item in items where item.isContainer { stack.append((item, depth + 1)) }
            case .object(let object):
                guard depth <= allowed else { throw depthViolation(pointer(), allowed) }
                for member in object where member.value.isContainer { stack.append((member.value, depth + 1)) }
            default:
                break
            }
            next = stack.popLast()
        }
    }

    /// Whether the value nests at most `limit` levels (its own included).
    private static func isShallow(_ value: JSONValue, within limit: Int) -> Bool {
        switch value {
        case .array(let items):
            guard limit > 0 else { return false }
            for item in items where item.isContainer && !isShallow(item, within: limit - 1) { return false }
            return true
        case .object(let object):
            guard limit > 0 else { return false }
            for member in object where member.value.isContainer && !isShallow(member.value, within: limit - 1) { return false }
            return true
        default:
            return true
        }
    }

    private static func depthViolation(_ pointer: String, _ allowed: Int) -> SchemaViolation {
        SchemaViolation(pointer: pointer, reason: "nests deeper than \(allowed) levels, more than a stored task can hold")
    }

    /// Checks one non-null property value and returns its canonical form.
    public static func validate(_ value: JSONValue, as property: TaskProperty) throws(SchemaViolation) -> JSONValue {
        // Built only for an error: this runs for every changed property of every update.
        func pointer() -> String { "/\(property.rawValue)" }
        switch property {
        case .type, .completionStatus:
            return try enumValue(value, allowed: property.allowedValues!, at: pointer())
        case .created, .modified, .launched, .completed:
            let text = try string(value, at: pointer())
            guard RFC3339.isValid(text) else {
                throw SchemaViolation(pointer: pointer(), reason: "must be an RFC 3339 date-time such as 2020-07-11T21:23:15.000Z, not \"\(text)\"")
            }
            return value
        case .percentComplete:
            // An int32 in SailPoint's schema (v2026 and v1), and in its Go SDK: a wider value
            // stored here would make the task unreadable there.
            if let n = value.int64Value, let small = Int32(exactly: n) { return .integer(Int64(small)) }
            let integral: Bool
            switch value {
            case .integer: integral = true
            case .number(let number): integral = number.doubleValue.isFinite && number.doubleValue.rounded(.towardZero) == number.doubleValue
            default: integral = false
            }
            guard integral else { throw SchemaViolation(pointer: pointer(), reason: "must be an integer, not \(describe(value))") }
            throw SchemaViolation(pointer: pointer(), reason: "must be a 32-bit integer (-2147483648 to 2147483647), not \(describe(value))")
        case .messages:
            guard case .array(var items) = value else {
                throw SchemaViolation(pointer: pointer(), reason: "must be an array, not \(value.describedType)")
            }
            for i in items.indices { items[i] = try message(items[i], at: "\(pointer())/\(i)") }
            return .array(items)
        case .returns:
            guard case .array(let items) = value else {
                throw SchemaViolation(pointer: pointer(), reason: "must be an array, not \(value.describedType)")
            }
            for (i, item) in items.enumerated() {
                let at = "\(pointer())/\(i)"
                let object = try object(item, at: at)
                _ = try requiredString(object, "name", at: at)
                _ = try requiredString(object, "attributeName", at: at)
            }
            return value
        case .attributes:
            _ = try object(value, at: pointer())
            return value
        case .target:
            var target = try object(value, at: pointer())
            try optionalString(target, "id", at: pointer())
            try optionalString(target, "name", at: pointer())
            if let type = target["type"], !type.isNull {
                target["type"] = try enumValue(type, allowed: targetTypes, at: "\(pointer())/type")
            }
            return .object(target)
        case .taskDefinitionSummary:
            let summary = try object(value, at: pointer())
            for name in ["id", "uniqueName", "description", "parentName", "executor"] {
                try optionalString(summary, name, at: pointer())
            }
            if let arguments = summary["arguments"], !arguments.isNull { _ = try object(arguments, at: "\(pointer())/arguments") }
            return value
        case .id, .uniqueName, .description, .parentName, .launcher, .progress:
            _ = try string(value, at: pointer())
            return value
        }
    }

    /// Checks one element of an array property (`messages` or `returns`) and returns its canonical form.
    public static func validateElement(
        _ value: JSONValue,
        of property: TaskProperty,
        at pointer: @autoclosure () -> String
    ) throws(SchemaViolation) -> JSONValue {
        try checkDepth(value, below: 2, at: pointer())
        switch property {
        case .messages:
            return try message(value, at: pointer())
        case .returns:
            let object = try object(value, at: pointer())
            _ = try requiredString(object, "name", at: pointer())
            _ = try requiredString(object, "attributeName", at: pointer())
            return value
        default:
            throw SchemaViolation(pointer: pointer(), reason: "is not an element of an array property")
        }
    }

    private static func message(_ value: JSONValue, at pointer: @autoclosure () -> String) throws(SchemaViolation) -> JSONValue {
        var message = try object(value, at: pointer())
        guard let type = message["type"] else { throw SchemaViolation(pointer: "\(pointer())/type", reason: "is required") }
        let canonicalType = try enumValue(type, allowed: messageTypes, at: "\(pointer())/type")
        // Most messages send the canonical case already: then the object is kept, not copied.
        let recased = canonicalType.stringValue != type.stringValue
        if recased { message["type"] = canonicalType }
        _ = try requiredString(message, "key", at: pointer())
        if let text = message["localizedText"], !text.isNull {
            let localized = try object(text, at: "\(pointer())/localizedText")
            try optionalString(localized, "locale", at: "\(pointer())/localizedText")
            try optionalString(localized, "message", at: "\(pointer())/localizedText")
        }
        if let parameters = message["parameters"], !parameters.isNull {
            guard case .array(let items) = parameters else {
                throw SchemaViolation(pointer: "\(pointer())/parameters", reason: "must be an array or null, not \(parameters.describedType)")
            }
            for (i, item) in items.enumerated() { _ = try object(item, at: "\(pointer())/parameters/\(i)") }
        }
        return recased ? .object(message) : value
    }

    private static func describe(_ value: JSONValue) -> String {
        let text = value.jsonText
        return text.count > 60 ? value.describedType : text
    }

    private static func object(_ value: JSONValue, at pointer: @autoclosure () -> String) throws(SchemaViolation) -> JSONObject {
        guard case .object(let object) = value else {
            throw SchemaViolation(pointer: pointer(), reason: "must be an object, not \(value.describedType)")
        }
        return object
    }

    private static func string(_ value: JSONValue, at pointer: @autoclosure () -> String) throws(SchemaViolation) -> String {
        guard case .string(let s) = value else { throw SchemaViolation(pointer: pointer(), reason: "must be a string, not \(describe(value))") }
        return s
    }

    private static func requiredString(_ object: JSONObject, _ name: String, at pointer: @autoclosure () -> String) throws(SchemaViolation) -> String
    {
        guard let value = object[name] else { throw SchemaViolation(pointer: "\(pointer())/\(name)", reason: "is required") }
        return try string(value, at: "\(pointer())/\(name)")
    }

    private static func optionalString(_ object: JSONObject, _ name: String, at pointer: @autoclosure () -> String) throws(SchemaViolation) {
        if let value = object[name], !value.isNull { _ = try string(value, at: "\(pointer())/\(name)") }
    }

    /// Enum values are accepted in any letter case and answered in the canonical upper case.
    private static func enumValue(_ value: JSONValue, allowed: [String], at pointer: @autoclosure () -> String) throws(SchemaViolation) -> JSONValue {
        let text = try string(value, at: pointer())
        if allowed.contains(text) { return value }
        let upper = text.uppercased()
        guard allowed.contains(upper) else {
            throw SchemaViolation(pointer: pointer(), reason: "must be one of \(allowed.joined(separator: ", ")), not \"\(text)\"")
        }
        return upper == text ? value : .string(upper)
    }
}

extension JSONObject {
    /// Appends a member the caller knows is new.
    mutating func append(_ key: String, _ value: JSONValue) {
        self[key] = value
    }
}
