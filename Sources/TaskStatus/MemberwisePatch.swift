//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import JSONPatch

/// A patch applied to a ``TaskRecord`` one top-level property at a time: the new record, and the
/// properties whose hash field changes.
public struct MemberwiseUpdate: Sendable {
    public var record: TaskRecord
    /// The properties whose value text differs from before (`modified` included when stamped).
    public var changed: TaskPropertySet
}

extension TaskRecord {
    private typealias Members = InlineArray<18, Member>

    /// What one property holds while a patch is applied member by member.
    private enum Member {
        /// The value as stored in ``TaskRecord/json`` (or absent, as it was).
        case original
        /// Removed.
        case absent
        /// A new value, checked against the schema when the patch is done.
        case value(JSONValue)
        /// The stored array with these elements appended.
        case appended([JSONValue])
    }

    /// Applies `patch` the cheap way when every operation stays inside one TaskStatus property:
    /// a whole property set, replaced, removed or tested, an element appended to an array
    /// property, or any operation below a property (on that property's value alone). Untouched
    /// properties are copied as text; touched ones are checked against the schema and written in
    /// their canonical form.
    ///
    /// Returns `nil` whenever the patch does anything else (the whole document, a non-TaskStatus
    /// member, `move` or `copy`) or fails anywhere: the caller then applies it the general way,
    /// which decides the same successes and words the errors. So this never words an error itself.
    public func applyingMemberwise(_ patch: JSONPatch, now: String) -> MemberwiseUpdate? {
        // One slot per property, on the stack: no allocation for the common case. Should the
        // schema gain a property without the slots following, decline to the general way
        // rather than index past the end (a check the compiler folds away).
        guard Members.count == TaskProperty.allCases.count else { return nil }
        var members = Members(repeating: .original)
        var touched = TaskPropertySet()
        for operation in patch.operations {
            let tokens = operation.path.tokens
            guard let first = tokens.first, let property = TaskProperty(name: first) else { return nil }
            let i = property.index
            if tokens.count == 1 {
                switch operation {
                case .test(_, let expected):
                    guard let actual = value(of: property, in: members[i]), actual == expected else { return nil }
                    continue
                case .add(_, let value):
                    members[i] = .value(value)
                case .replace(_, let value):
                    guard exists(property, in: members[i]) else { return nil }
                    members[i] = .value(value)
                case .remove:
                    guard exists(property, in: members[i]) else { return nil }
                    members[i] = .absent
                case .move, .copy:
                    return nil
                }
                touched.insert(property)
                continue
            }
            if case .add(_, let element) = operation, tokens.count == 2, tokens[1] == "-", property.kind == .array {
                switch members[i] {
                case .original where valueRange(property) != nil:
                    members[i] = .appended([element])
                case .appended(var elements):
                    members[i] = .original
                    elements.append(element)
                    members[i] = .appended(elements)
                case .value(.array(var elements)):
                    members[i] = .original
                    elements.append(element)
                    members[i] = .value(.array(elements))
                default:
                    return nil
                }
                touched.insert(property)
                continue
            }
            // Below a property: the operation applies to that property's value alone.
            let rest = JSONPointer(tokens: Array(tokens.dropFirst()))
            let inner: JSONPatchOperation
            switch operation {
            case .add(_, let new): inner = .add(path: rest, value: new)
            case .replace(_, let new): inner = .replace(path: rest, value: new)
            case .remove: inner = .remove(path: rest)
            case .test(_, let expected): inner = .test(path: rest, value: expected)
            case .move, .copy: return nil
            }
            guard var value = value(of: property, in: members[i]) else { return nil }
            do { try JSONPatch(operations: [inner]).apply(to: &value) } catch { return nil }
            if case .test = operation { continue }
            members[i] = .value(value)
            touched.insert(property)
        }
        if !touched.contains(.modified) { members[TaskProperty.modified.index] = .value(.string(now)) }
        return written(members, touched: touched)
    }

    /// Whether the property is present (a required nullable one holding `null` is).
    private func exists(_ property: TaskProperty, in member: Member) -> Bool {
        switch member {
        case .original: return valueRange(property) != nil
        case .absent: return false
        case .value, .appended: return true
        }
    }

    /// The property's current value; `nil` when it is absent or its stored text does not parse.
    private func value(of property: TaskProperty, in member: Member) -> JSONValue? {
        switch member {
        case .absent:
            return nil
        case .value(let value):
            return value
        case .original, .appended:
            guard let range = valueRange(property) else { return nil }
            let parser = JSONParser.accepted
            guard let stored = try? parser.parse(json, in: range) else { return nil }
            guard case .appended(let elements) = member else { return stored }
            guard case .array(let items) = stored else { return nil }
            return .array(items + elements)
        }
    }

    /// Checks the touched members, writes the record in schema order and works out what changed.
    private func written(_ members: borrowing Members, touched: TaskPropertySet) -> MemberwiseUpdate? {
        var out: [UInt8] = []
        out.reserveCapacity(json.count + 256)
        var bounds = [Int](repeating: -1, count: 2 * TaskProperty.allCases.count)
        var changed = TaskPropertySet()
        out.append(UInt8(ascii: "{"))
        // Untouched members next to each other are copied as one run of the stored text (keys,
        // commas and values), and their value ranges shifted.
        var runStart = -1
        var runEnd = -1
        var runFrom = 0
        func copyRun(upTo end: Int) {
            guard runStart >= 0 else { return }
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            let shift = out.count - runStart
            out.append(contentsOf: json[runStart..<runEnd])
            for k in runFrom..<end {
                guard case .original = members[k], let range = valueRange(TaskProperty.allCases[k]) else { continue }
                bounds[2 * k] = range.lowerBound + shift
                bounds[2 * k + 1] = range.upperBound + shift
            }
            runStart = -1
        }
        for property in TaskProperty.allCases {
            let i = property.index
            let before = valueRange(property)
            if case .original = members[i] {
                guard let before else { continue }
                if runStart < 0 {
                    runStart = before.lowerBound - Self.keyTexts[i].count
                    runFrom = i
                }
                runEnd = before.upperBound
                continue
            }
            copyRun(upTo: i)
            let new: JSONValue?
            switch members[i] {
            case .original:
                continue
            case .absent:
                new = nil
            case .value(let value):
                new = value
            case .appended(let elements):
                guard let before else { return nil }
                Self.beginMember(property, in: &out)
                bounds[2 * i] = out.count
                out.append(contentsOf: json[before.dropLast()])
                var first = before.count == 2
                for element in elements {
                    guard let canonical = try? TaskStatusSchema.validateElement(element, of: property, at: "") else { return nil }
                    if !first { out.append(UInt8(ascii: ",")) }
                    first = false
                    JSONWriter.write(canonical, to: &out)
                }
                out.append(UInt8(ascii: "]"))
                bounds[2 * i + 1] = out.count
                changed.insert(property)
                continue
            }
            let canonical: JSONValue?
            do {
                canonical = try TaskStatusSchema.canonicalMember(new, of: property)
            } catch {
                return nil
            }
            guard let value = canonical else {
                if before != nil { changed.insert(property) }
                continue
            }
            Self.beginMember(property, in: &out)
            let start = out.count
            JSONWriter.write(value, to: &out)
            bounds[2 * i] = start
            bounds[2 * i + 1] = out.count
            if before.map({ !json[$0].elementsEqual(out[start...]) }) ?? true { changed.insert(property) }
        }
        copyRun(upTo: TaskProperty.allCases.count)
        out.append(UInt8(ascii: "}"))
        // The stamp is written even when it equals the stored time, as the general path does.
        if !touched.contains(.modified) { changed.insert(.modified) }
        return MemberwiseUpdate(record: TaskRecord(rev: rev + 1, json: out, bounds: bounds), changed: changed)
    }

    private static func beginMember(_ property: TaskProperty, in out: inout [UInt8]) {
        if out.count > 1 { out.append(UInt8(ascii: ",")) }
        out.append(contentsOf: keyTexts[property.index])
    }
}
