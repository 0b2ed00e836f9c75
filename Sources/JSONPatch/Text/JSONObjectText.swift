//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A JSON object kept as its canonical compact text, patched without building the members a patch
/// does not touch, and then inspected member by member.
///
/// This is how a stored document is updated cheaply: the caller knows where each top-level member's
/// value lies in the text, applies a patch, asks how each member changed (checking only those),
/// and writes the members back, copying the unchanged ones verbatim.
public struct JSONObjectText: Sendable {
    private var document: LazyDocument
    /// The members as they were, in order (few: a linear search beats hashing the keys).
    private let original: [(key: String, range: Range<Int>)]

    /// How one top-level member differs after the patch.
    public enum Change: Sendable, Equatable {
        /// The member holds its original text.
        case unchanged
        /// The member is gone.
        case removed
        /// The member is its original array with these elements appended.
        case appended([JSONValue])
        /// Any other new value (materialised).
        case replaced(JSONValue)
    }

    /// - Parameters:
    ///   - text: compact JSON text of an object, as ``JSONWriter`` writes it (no white space, no
    ///     repeated keys, no `\u` escapes), typically text this process wrote itself.
    ///   - keys: the possible member keys, in the order of the text.
    ///   - ranges: the range of each key's value in `text`, `nil` for a key the object lacks.
    public init(canonicalText text: [UInt8], keys: [String], ranges: [Range<Int>?]) {
        var members: [(key: String, range: Range<Int>)] = []
        members.reserveCapacity(keys.count)
        for (key, range) in zip(keys, ranges) {
            if let range { members.append((key, range)) }
        }
        self.init(canonicalText: text, members: members)
    }

    /// - Parameters:
    ///   - text: compact JSON text of an object, as ``JSONWriter`` writes it (no white space, no
    ///     repeated keys, no `\u` escapes), typically text this process wrote itself.
    ///   - members: each member's key and the range of its value in `text`, in order.
    public init(canonicalText text: [UInt8], members: [(key: String, range: Range<Int>)]) {
        document = LazyDocument(
            source: text,
            compact: true,
            containerBounds: [],
            root: .object(members.map { LazyMember(key: $0.key, node: .raw($0.range)) })
        )
        self.original = members
    }

    private func originalRange(_ key: String) -> Range<Int>? {
        original.first { $0.key.isKey(key) }?.range
    }

    /// Applies a patch. When it throws, the object is in an unspecified state: discard it.
    public mutating func apply(_ patch: JSONPatch) throws(JSONPatchError) {
        try patch.applyInPlace(&document)
    }

    /// Whether the patch replaced the whole document with something that is not an object.
    public var isObject: Bool {
        if case .object = document.root { return true }
        return document.text.typeName(of: document.root) == "object"
    }

    /// The current top-level keys, in order.
    public var keys: [String] {
        if case .object(let members) = document.text.expanded(document.root) { return members.map(\.key) }
        return []
    }

    private func node(_ key: String) -> LazyNode? {
        if case .object(let members) = document.root { return members.first { $0.key.isKey(key) }?.node }
        guard case .object(let members) = document.text.expanded(document.root) else { return nil }
        return members.first { $0.key.isKey(key) }?.node
    }

    /// How the member `key` changed.
    public func change(of key: String) -> Change {
        let before = originalRange(key)
        guard let node = node(key) else { return before == nil ? .unchanged : .removed }
        switch node {
        case .raw(let range) where range == before:
            return .unchanged
        case .appended(let range, let tail) where range == before:
            return .appended(tail.map { document.text.jsonValue(of: $0) })
        default:
            return .replaced(document.text.jsonValue(of: node))
        }
    }

    /// Sets a member to a new form of its change (`.unchanged` is ignored); a new key is appended.
    public mutating func set(_ key: String, to change: Change) {
        let node: LazyNode?
        switch change {
        case .unchanged: return
        case .removed: node = nil
        case .replaced(let value): node = .value(value)
        case .appended(let elements):
            guard let range = originalRange(key) else { return }
            node = .appended(range, elements.map { .value($0) })
        }
        var members: [LazyMember]
        if case .object(let current) = document.text.expanded(document.root) { members = current } else { members = [] }
        document.root = .value(.null)
        if let i = members.firstIndex(where: { $0.key.isKey(key) }) {
            if let node { members[i].node = node } else { members.remove(at: i) }
        } else if let node {
            members.append(LazyMember(key: key, node: node))
        }
        document.root = .object(members)
    }

    /// Appends the compact text of member `key`'s value; `false` when there is no such member.
    @discardableResult
    public func writeValue(of key: String, to out: inout [UInt8]) -> Bool {
        guard let node = node(key) else { return false }
        document.text.write(node, to: &out)
        return true
    }

    /// The original text of member `key`'s value.
    public func originalValue(of key: String) -> ArraySlice<UInt8>? {
        originalRange(key).map { document.source[$0] }
    }

    /// Writes the object with its members in `order` (keys not present are skipped, keys not in
    /// `order` are left out); returns the range of each written value by its position in `order`.
    /// `keyTexts`, when given, holds each key already written as JSON with its colon (`"key":`).
    public func write(membersIn order: [String], keyTexts: [[UInt8]]? = nil, to out: inout [UInt8]) -> [Range<Int>?] {
        let members: [LazyMember]
        if case .object(let current) = document.root {
            members = current
        } else if case .object(let current) = document.text.expanded(document.root) {
            members = current
        } else {
            members = []
        }
        var ranges = [Range<Int>?](repeating: nil, count: order.count)
        out.append(UInt8(ascii: "{"))
        var first = true
        var cursor = 0
        for (position, key) in order.enumerated() {
            // Members usually come in `order` already: look at the next one first.
            let index: Int?
            if cursor < members.count, members[cursor].key.isKey(key) {
                index = cursor
            } else {
                index = members.firstIndex { $0.key.isKey(key) }
            }
            guard let index else { continue }
            cursor = index + 1
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            if let keyTexts {
                out.append(contentsOf: keyTexts[position])
            } else {
                JSONWriter.writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
            }
            let start = out.count
            document.text.write(members[index].node, to: &out)
            ranges[position] = start..<out.count
        }
        out.append(UInt8(ascii: "}"))
        return ranges
    }
}
