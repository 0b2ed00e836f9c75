//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Why a JSON Patch was refused or failed, with everything a caller needs to fix it: the index of
/// the operation (0-based), its `op`, its `path` and `from`, and the reason in words.
public struct JSONPatchError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure; new kinds may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String {
            case invalidJSON = "invalid JSON"
            case invalidPatch = "invalid patch"
            case invalidPointer = "invalid pointer"
            case pathNotFound = "path not found"
            case invalidTarget = "invalid target"
            case testFailed = "test failed"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The patch text is not JSON.
        public static let invalidJSON = Code(.invalidJSON)
        /// The patch is JSON but not a valid patch document: not an array, an operation that is not
        /// an object, an unknown `op`, a missing or mistyped `path`, `from` or `value`.
        public static let invalidPatch = Code(.invalidPatch)
        /// `path` or `from` is not a JSON Pointer (RFC 6901).
        public static let invalidPointer = Code(.invalidPointer)
        /// A location the operation needs does not exist (missing member, index out of bounds).
        public static let pathNotFound = Code(.pathNotFound)
        /// The location exists but cannot take the operation: a scalar where a container is
        /// needed, a token that is not an array index, a move into its own child.
        public static let invalidTarget = Code(.invalidTarget)
        /// A `test` operation found a different value.
        public static let testFailed = Code(.testFailed)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// The failing operation's position in the patch (0-based); `nil` when the patch as a whole is bad.
    public let operationIndex: Int?
    /// The failing operation's `op`, when it has a valid one.
    public let op: String?
    /// The failing operation's `path`, as written.
    public let path: String?
    /// The failing operation's `from`, as written (`move` and `copy`).
    public let from: String?
    /// What went wrong, in words a caller can act on.
    public let reason: String

    public init(code: Code, operationIndex: Int?, op: String?, path: String?, from: String? = nil, reason: String) {
        self.code = code
        self.operationIndex = operationIndex
        self.op = op
        self.path = path
        self.from = from
        self.reason = reason
    }

    /// For example: `operation 1 (remove) at path "/a/b": the object at "/a" has no member "b"`.
    public var description: String {
        guard let operationIndex else { return reason }
        var text = "operation \(operationIndex)"
        if let op { text += " (\(op))" }
        if let from { text += " from \"\(from)\"" }
        if let path { text += (from == nil ? " at path" : " to") + " \"\(path)\"" }
        return text + ": " + reason
    }

    /// The error as a JSON object, for machine readers.
    public var jsonValue: JSONValue {
        var object = JSONObject()
        object["error"] = .string(description)
        object["code"] = .string(code.description)
        if let operationIndex { object["index"] = .integer(Int64(operationIndex)) }
        if let op { object["op"] = .string(op) }
        if let path { object["path"] = .string(path) }
        if let from { object["from"] = .string(from) }
        object["reason"] = .string(reason)
        return .object(object)
    }
}
