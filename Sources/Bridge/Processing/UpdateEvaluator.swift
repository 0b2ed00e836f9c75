//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
public import TaskStatus

/// What one request does to a task, decided without I/O.
public enum Evaluation: Sendable {
    /// The patch applies: the task's new record, the hash fields it changes, the answer.
    case updated(TaskRecord, changes: [(property: TaskProperty, value: [UInt8]?)], response: TaskResponse)
    /// The request fails; nothing changes.
    case failed(TaskResponse)

    public var response: TaskResponse {
        switch self {
        case .updated(_, _, let response), .failed(let response): return response
        }
    }
}

/// Applies a request to a task: the precondition, the JSON Patch, the schema, the immutable and
/// writable properties, and the `modified` stamp. Pure, so that it is tested without Redis and
/// run again unchanged when a commit meets a newer revision.
public struct UpdateEvaluator: Sendable {
    public var writableProperties: Set<TaskProperty>

    public init(writableProperties: Set<TaskProperty>) {
        self.writableProperties = writableProperties.subtracting(TaskProperty.immutable)
    }

    /// - Parameters:
    ///   - record: the task as stored, `nil` when there is no such task.
    ///   - now: the time to stamp `modified` with.
    public func evaluate(_ request: PatchRequest, on record: TaskRecord?, now: String) -> Evaluation {
        if let rejection = request.rejection { return .failed(rejection) }
        guard let patch = request.patch else { return .failed(.error(500, "the request has no decoded patch")) }
        guard var record else { return .failed(.error(404, "there is no task with id \(request.taskId)")) }
        let rev = record.rev
        if let expected = request.ifMatch, expected != rev {
            return .failed(.error(412, "if-match is \(expected) but the task is at revision \(rev)", rev: rev))
        }
        var document = record.document
        do {
            try patch.apply(to: &document)
        } catch {
            return .failed(.error(400, error.description, rev: rev))
        }
        // Only what the patch touched needs checking: the rest was valid and is unchanged.
        let touchedNames = Self.touchedMembers(of: patch)
        var canonical: JSONValue
        do {
            canonical = try TaskStatusSchema.validate(document, touched: touchedNames)
        } catch {
            return .failed(.error(400, error.description, rev: rev))
        }
        let touched = touchedNames.map { names in TaskProperty.allCases.filter { names.contains($0.rawValue) } } ?? TaskProperty.allCases
        var changes = record.changes(to: canonical, among: touched)
        for change in changes {
            if TaskProperty.immutable.contains(change.property) {
                return .failed(.error(400, "\(change.property.rawValue) cannot change", rev: rev))
            }
            if !writableProperties.contains(change.property) {
                return .failed(.error(400, "\(change.property.rawValue) is not writable on this bridge", rev: rev))
            }
        }
        if !touched.contains(.modified), case .object(var object) = canonical {
            canonical = .null
            object["modified"] = .string(now)
            canonical = .object(object)
            changes.append((.modified, Array(now.utf8)))
        }
        record.update(to: canonical, changes: changes)
        record.rev = rev + 1
        let response = TaskResponse(status: 200, headers: [("ETag", "\"\(rev + 1)\"")], body: record.taskJSON, rev: rev + 1)
        return .updated(record, changes: changes, response: response)
    }

    /// The top-level members that the patch may change: the first token of every path it writes
    /// (and of `move` sources); `nil` (all of them) when an operation replaces the whole document.
    static func touchedMembers(of patch: JSONPatch) -> Set<String>? {
        var touched = Set<String>()
        for operation in patch.operations {
            for location in operation.modifiedLocations {
                guard let first = location.tokens.first else { return nil }
                touched.insert(first)
            }
        }
        return touched
    }
}
