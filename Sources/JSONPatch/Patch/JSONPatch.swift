//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// One JSON Patch operation (RFC 6902 section 4).
public enum JSONPatchOperation: Sendable, Equatable {
    case add(path: JSONPointer, value: JSONValue)
    case remove(path: JSONPointer)
    case replace(path: JSONPointer, value: JSONValue)
    case move(from: JSONPointer, path: JSONPointer)
    case copy(from: JSONPointer, path: JSONPointer)
    case test(path: JSONPointer, value: JSONValue)

    /// The operation's `op` member.
    public var op: String {
        switch self {
        case .add: return "add"
        case .remove: return "remove"
        case .replace: return "replace"
        case .move: return "move"
        case .copy: return "copy"
        case .test: return "test"
        }
    }

    /// The operation's target location.
    public var path: JSONPointer {
        switch self {
        case .add(let path, _), .remove(let path), .replace(let path, _), .test(let path, _): return path
        case .move(_, let path), .copy(_, let path): return path
        }
    }

    /// The source location of `move` and `copy`.
    public var from: JSONPointer? {
        switch self {
        case .move(let from, _), .copy(let from, _): return from
        default: return nil
        }
    }

    /// The locations whose contents the operation may change (`move` changes its source too).
    public var modifiedLocations: [JSONPointer] {
        switch self {
        case .test: return []
        case .move(let from, let path): return [from, path]
        default: return [path]
        }
    }

    /// The operation as a JSON object.
    public var jsonValue: JSONValue {
        var object = JSONObject(minimumCapacity: 3)
        object["op"] = .string(op)
        if let from { object["from"] = .string(from.description) }
        object["path"] = .string(path.description)
        switch self {
        case .add(_, let value), .replace(_, let value), .test(_, let value): object["value"] = value
        default: break
        }
        return .object(object)
    }
}

/// A JSON Patch document (RFC 6902): operations applied in order, all or nothing.
public struct JSONPatch: Sendable, Equatable {
    public var operations: [JSONPatchOperation]

    public init(operations: [JSONPatchOperation]) {
        self.operations = operations
    }

    /// Decodes a patch document: an array of operation objects.
    public init(_ json: JSONValue) throws(JSONPatchError) {
        guard case .array(let elements) = json else {
            throw JSONPatchError(
                code: .invalidPatch,
                operationIndex: nil,
                op: nil,
                path: nil,
                reason: "a JSON Patch must be an array of operations, found \(json.describedType)"
            )
        }
        var operations: [JSONPatchOperation] = []
        operations.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            operations.append(try Self.decodeOperation(element, index: index))
        }
        self.operations = operations
    }

    /// Reads a plain, valid patch text straight into operations; `nil` for anything else (an
    /// invalid patch included), which ``init(parsing:parser:)`` then reads and explains.
    public init?(readingPlain bytes: [UInt8], parser: JSONParser = JSONParser()) {
        guard let operations = parser.patchOperations(bytes) else { return nil }
        self.operations = operations
    }

    /// Parses and decodes patch text.
    public init(parsing bytes: [UInt8], parser: JSONParser = JSONParser()) throws(JSONPatchError) {
        if let operations = parser.patchOperations(bytes) {
            self.init(operations: operations)
            return
        }
        let json: JSONValue
        do {
            json = try parser.parse(bytes)
        } catch {
            throw JSONPatchError(code: .invalidJSON, operationIndex: nil, op: nil, path: nil, reason: "the patch is not valid JSON: \(error)")
        }
        try self.init(json)
    }

    /// Parses and decodes patch text.
    public init(parsing text: String, parser: JSONParser = JSONParser()) throws(JSONPatchError) {
        try self.init(parsing: Array(text.utf8), parser: parser)
    }

    /// The patch as a JSON array.
    public var jsonValue: JSONValue { .array(operations.map(\.jsonValue)) }

    private static func decodeOperation(_ element: JSONValue, index: Int) throws(JSONPatchError) -> JSONPatchOperation {
        guard case .object(let object) = element else {
            throw JSONPatchError(
                code: .invalidPatch,
                operationIndex: index,
                op: nil,
                path: nil,
                reason: "an operation must be an object, found \(element.describedType)"
            )
        }
        let pathText = object["path"]?.stringValue
        func fail(_ reason: String, op: String?, code: JSONPatchError.Code = .invalidPatch) -> JSONPatchError {
            JSONPatchError(code: code, operationIndex: index, op: op, path: pathText, from: object["from"]?.stringValue, reason: reason)
        }
        guard let opValue = object["op"] else { throw fail("the operation has no \"op\" member", op: nil) }
        guard case .string(let op) = opValue else {
            throw fail("\"op\" must be a string, found \(opValue.describedType)", op: nil)
        }
        func pointer(_ name: String) throws(JSONPatchError) -> JSONPointer {
            guard let value = object[name] else { throw fail("the \(op) operation needs a \"\(name)\" member", op: op) }
            guard case .string(let text) = value else {
                throw fail("\"\(name)\" must be a JSON Pointer string, found \(value.describedType)", op: op)
            }
            do {
                return try JSONPointer(text)
            } catch {
                throw fail("\"\(name)\" is not a valid JSON Pointer: \(error.reason)", op: op, code: .invalidPointer)
            }
        }
        func value() throws(JSONPatchError) -> JSONValue {
            guard let value = object["value"] else { throw fail("the \(op) operation needs a \"value\" member", op: op) }
            return value
        }
        switch op {
        case "add": return .add(path: try pointer("path"), value: try value())
        case "remove": return .remove(path: try pointer("path"))
        case "replace": return .replace(path: try pointer("path"), value: try value())
        case "move":
            let path = try pointer("path")
            return .move(from: try pointer("from"), path: path)
        case "copy":
            let path = try pointer("path")
            return .copy(from: try pointer("from"), path: path)
        case "test": return .test(path: try pointer("path"), value: try value())
        default:
            throw fail("unknown op \"\(op)\"; expected add, remove, replace, move, copy or test", op: nil)
        }
    }

    /// Applies the patch to `document` in place. All or nothing: when an operation fails,
    /// `document` is left exactly as it was.
    public func apply(to document: inout JSONValue) throws(JSONPatchError) {
        var work = document
        try applyInPlace(&work)
        document = work
    }

    /// Returns the patched document. Passing a uniquely referenced document (a value the caller
    /// does not use afterwards) lets the operations edit it without copying.
    public func applied(to document: consuming JSONValue) throws(JSONPatchError) -> JSONValue {
        var work = document
        try applyInPlace(&work)
        return work
    }

    /// Runs the operations in order on any document representation; the first failure stops
    /// the patch and is reported with the operation's index and names.
    func applyInPlace<Target: PatchTarget>(_ target: inout Target) throws(JSONPatchError) {
        for (index, operation) in operations.enumerated() {
            do {
                try Self.apply(operation, to: &target)
            } catch {
                throw JSONPatchError(
                    code: error.code,
                    operationIndex: index,
                    op: operation.op,
                    path: operation.path.description,
                    from: operation.from?.description,
                    reason: error.reason
                )
            }
        }
    }

    private static func apply<Target: PatchTarget>(_ operation: JSONPatchOperation, to target: inout Target) throws(Failure) {
        switch operation {
        case .add(let path, let value):
            try target.add(Target.node(value), at: path)
        case .remove(let path):
            _ = try target.remove(at: path)
        case .replace(let path, let value):
            try target.replace(at: path, with: Target.node(value))
        case .move(let from, let path):
            if from == path {
                _ = try target.node(at: from)
                return
            }
            if path.hasPrefix(from) {
                throw Failure(.invalidTarget, "cannot move a value into its own child (\"\(path)\" is inside \"\(from)\")")
            }
            let node = try target.remove(at: from)
            try target.add(node, at: path)
        case .copy(let from, let path):
            let node = try target.node(at: from)
            try target.add(node, at: path)
        case .test(let path, let expected):
            let actual = target.jsonValue(of: try target.node(at: path))
            guard actual == expected else {
                throw Failure(.testFailed, "test failed: the value at \"\(path)\" is \(excerpt(actual)), not \(excerpt(expected))")
            }
        }
    }

    private static func excerpt(_ value: JSONValue) -> String {
        let text = value.jsonText
        guard text.utf8.count > 120 else { return text }
        return String(text.prefix(117)) + "..."
    }
}

/// What the patch operations need of a document representation: the in-memory ``JSONValue``,
/// or JSON text that is only built where the patch touches it.
protocol PatchTarget {
    /// A subtree of the document.
    associatedtype Node
    static func node(_ value: JSONValue) -> Node
    /// The subtree at `pointer` (for `copy`, `test`, and the source of `move`).
    func node(at pointer: JSONPointer) throws(Failure) -> Node
    func jsonValue(of node: Node) -> JSONValue
    /// Inserts into an array or sets an object member; the empty pointer replaces the document.
    mutating func add(_ node: Node, at pointer: JSONPointer) throws(Failure)
    /// Removes an existing location and returns what was there.
    mutating func remove(at pointer: JSONPointer) throws(Failure) -> Node
    /// Replaces the value at an existing location.
    mutating func replace(at pointer: JSONPointer, with node: Node) throws(Failure)
}

/// An operation's failure before the patch adds the operation's index and names.
struct Failure: Error {
    let code: JSONPatchError.Code
    let reason: String

    init(_ code: JSONPatchError.Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    init(pointerError: JSONPointerError) {
        self.init(pointerError.code == .notFound ? .pathNotFound : .invalidTarget, pointerError.reason)
    }

    static let removeRoot = Failure(.invalidTarget, "cannot remove the whole document")
}

extension JSONPointer {
    /// Checks the last token as an index into an array of `count` elements.
    func lastIndex(in count: Int, allowEnd: Bool) throws(Failure) -> Int {
        do {
            return try arrayIndex(tokens[tokens.count - 1], at: tokens.count - 1, count: count, allowEnd: allowEnd)
        } catch {
            throw Failure(pointerError: error)
        }
    }

    /// Checks token `depth` as an index of an existing element.
    func existingIndex(at depth: Int, count: Int) throws(Failure) -> Int {
        do {
            return try arrayIndex(tokens[depth], at: depth, count: count, allowEnd: false)
        } catch {
            throw Failure(pointerError: error)
        }
    }

    func missingLastMember() -> Failure {
        Failure(.pathNotFound, missingMember(tokens[tokens.count - 1], at: tokens.count - 1))
    }
}
