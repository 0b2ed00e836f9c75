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
    /// The patch applies: the task's new record, the properties whose hash fields change, the answer.
    case updated(TaskRecord, changed: TaskPropertySet, response: TaskResponse)
    /// The request fails; nothing changes.
    case failed(TaskResponse)

    /// A success: the 200 answer carries the new task and its revision as ETag.
    static func updated(_ record: TaskRecord, changed: TaskPropertySet) -> Evaluation {
        .updated(
            record,
            changed: changed,
            response: TaskResponse(status: 200, headers: [("ETag", "\"\(record.rev)\"")], body: record.json, rev: record.rev)
        )
    }

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
    /// The properties an update may change (never the immutable ones), as bits: checked for
    /// every changed property.
    private let writable: TaskPropertySet

    /// Whether patches that stay inside single properties take the cheap way
    /// (``TaskRecord/applyingMemberwise(_:now:)``); off only in tests that compare both ways.
    let appliesMemberwise: Bool

    public var writableProperties: Set<TaskProperty> { Set(writable) }

    public init(writableProperties: Set<TaskProperty>) {
        self.init(writableProperties: writableProperties, appliesMemberwise: true)
    }

    init(writableProperties: Set<TaskProperty>, appliesMemberwise: Bool) {
        self.writable = TaskPropertySet(writableProperties.subtracting(TaskProperty.immutable))
        self.appliesMemberwise = appliesMemberwise
    }

    /// - Parameters:
    ///   - record: the task as stored, `nil` when there is no such task.
    ///   - now: the time to stamp `modified` with.
    public func evaluate(_ request: PatchRequest, on record: TaskRecord?, now: String) -> Evaluation {
        if let rejection = request.rejection { return .failed(rejection) }
        if let creation = request.creation {
            if let record {
                return .failed(.error(409, "a task with id \(request.taskId) exists already (revision \(record.rev))", rev: record.rev))
            }
            var changed = TaskPropertySet()
            for property in TaskProperty.allCases where creation.valueRange(property) != nil { changed.insert(property) }
            return .updated(
                creation,
                changed: changed,
                response: TaskResponse(status: 201, headers: [("ETag", "\"1\"")], body: creation.json, rev: 1)
            )
        }
        guard let patch = request.patch else { return .failed(.error(500, "the request has no decoded patch")) }
        guard let record else { return .failed(.error(404, "there is no task with id \(request.taskId)")) }
        let rev = record.rev
        if let expected = request.ifMatch, expected != rev {
            return .failed(.error(412, "if-match is \(expected) but the task is at revision \(rev)", rev: rev))
        }
        // Nearly every patch sets, appends to or edits single properties: that way only those are
        // built and checked. Whatever it declines (other shapes, and every failure) goes the general
        // way below, which decides the same and words the error.
        if appliesMemberwise, let update = record.applyingMemberwise(patch, now: now),
            update.changed.bits & ~writable.bits == 0
        {
            return .updated(update.record, changed: update.changed)
        }
        // The patch edits the stored text; only the members it touched are built and checked.
        var text = JSONObjectText(canonicalText: record.json, keys: TaskRecord.names, ranges: record.valueRanges)
        do {
            try text.apply(patch)
        } catch {
            return .failed(.error(400, error.description, rev: rev))
        }
        guard text.isObject else {
            return .failed(.error(400, SchemaViolation(pointer: "", reason: "must be an object").description, rev: rev))
        }
        let touchedMembers = Self.touchedMembers(of: patch)
        let touched = touchedMembers?.properties ?? .all
        do {
            try Self.validate(&text, touched: touched, others: touchedMembers.map { $0.others })
        } catch {
            return .failed(.error(400, error.description, rev: rev))
        }
        // A field changes when its value's canonical text does: compare texts, no decoding.
        var changed = TaskPropertySet()
        var scratch: [UInt8] = []
        for property in touched {
            scratch.removeAll(keepingCapacity: true)
            let present = text.writeValue(of: property.rawValue, to: &scratch)
            let before = record.valueText(property)
            let same = present ? before?.elementsEqual(scratch) == true : before == nil
            guard !same else { continue }
            if TaskProperty.immutableSet.contains(property) {
                return .failed(.error(400, "\(property.rawValue) cannot change", rev: rev))
            }
            if !writable.contains(property) {
                return .failed(.error(400, "\(property.rawValue) is not writable on this bridge", rev: rev))
            }
            changed.insert(property)
        }
        if !touched.contains(.modified) {
            text.set(TaskProperty.modified.rawValue, to: .replaced(.string(now)))
            changed.insert(.modified)
        }
        var json: [UInt8] = []
        json.reserveCapacity(record.json.count + 256)
        let ranges = text.write(membersIn: TaskRecord.names, keyTexts: TaskRecord.keyTexts, to: &json)
        return .updated(TaskRecord(rev: rev + 1, json: json, valueRanges: ranges), changed: changed)
    }

    /// Checks the touched top-level members (`names`, or all of them for `nil`; `touched` holds
    /// those that are TaskStatus properties) against the schema and puts their canonical forms
    /// back; untouched members were valid before and are unchanged.
    static func validate(_ text: inout JSONObjectText, touched: TaskPropertySet, others: [String]?) throws(SchemaViolation) {
        let whole = others == nil
        for property in touched {
            let name = property.rawValue
            let change = whole ? try Self.wholeValue(of: name, in: text) : text.change(of: name)
            switch change {
            case .unchanged:
                continue
            case .removed, .replaced:
                let new: JSONValue? = if case .replaced(let value) = change { value } else { nil }
                text.set(name, to: try TaskStatusSchema.canonicalMember(new, of: property).map { .replaced($0) } ?? .removed)
            case .appended(let elements):
                var canonical: [JSONValue] = []
                canonical.reserveCapacity(elements.count)
                for element in elements {
                    canonical.append(try TaskStatusSchema.validateElement(element, of: property, at: "\(pointer(name))/-"))
                }
                text.set(name, to: .appended(canonical))
            }
        }
        // Members that are not TaskStatus properties may only be removed (they were not stored).
        let unknown = others ?? text.keys.filter { TaskProperty(name: $0) == nil }
        for name in unknown.sorted() {
            let change = whole ? try Self.wholeValue(of: name, in: text) : text.change(of: name)
            if case .replaced = change { throw SchemaViolation(pointer: pointer(name), reason: "is not a TaskStatus property") }
        }
    }

    private static func pointer(_ name: String) -> String { "/" + JSONPointer.escape(name) }

    /// After the whole document was replaced, every member counts as new. Its text was parsed
    /// (or written) once already, so it reads back under ``JSONParser/accepted``; should it not,
    /// that is an error, never a silent `null`.
    private static func wholeValue(of name: String, in text: JSONObjectText) throws(SchemaViolation) -> JSONObjectText.Change {
        switch text.change(of: name) {
        case .unchanged, .appended:
            var bytes: [UInt8] = []
            guard text.writeValue(of: name, to: &bytes) else { return .removed }
            do {
                return .replaced(try JSONParser.accepted.parse(bytes))
            } catch {
                throw SchemaViolation(pointer: pointer(name), reason: "cannot be read back: \(error)")
            }
        case let other:
            return other
        }
    }

    /// The top-level members that the patch may change: the first token of every path it writes
    /// (and of `move` sources); `nil` (all of them) when an operation replaces the whole document.
    static func touchedMembers(of patch: JSONPatch) -> (properties: TaskPropertySet, others: [String])? {
        // Bits for the properties, a list only for other names (rare: they are refused).
        var properties = TaskPropertySet()
        var others: [String] = []
        func touch(_ pointer: JSONPointer) -> Bool {
            guard let first = pointer.tokens.first else { return false }
            if let property = TaskProperty(name: first) {
                properties.insert(property)
            } else if !others.contains(first) {
                others.append(first)
            }
            return true
        }
        for operation in patch.operations {
            switch operation {
            case .test:
                continue
            case .move(let from, let path):
                guard touch(from), touch(path) else { return nil }
            case .add(let path, _), .remove(let path), .replace(let path, _), .copy(_, let path):
                guard touch(path) else { return nil }
            }
        }
        return (properties, others)
    }
}
