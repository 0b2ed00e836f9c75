//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A JSON object that keeps its members in document order.
///
/// Members live in one contiguous array: the objects of task documents are small (a few dozen
/// members at most), where a linear scan beats hashing and parsing needs one allocation per object.
/// Keys are unique; setting an existing key replaces its value in place.
public struct JSONObject: Sendable, Equatable, RandomAccessCollection {
    /// One member of an object.
    public struct Member: Sendable {
        public var key: String
        public var value: JSONValue

        public init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    @usableFromInline var members: [Member]

    public init() { members = [] }

    public init(minimumCapacity: Int) {
        members = []
        members.reserveCapacity(minimumCapacity)
    }

    /// Creates an object from members that are known to have distinct keys.
    init(uniqueMembers: [Member]) { members = uniqueMembers }

    public var startIndex: Int { members.startIndex }
    public var endIndex: Int { members.endIndex }
    public subscript(position: Int) -> Member { members[position] }

    /// The member keys, in order.
    public var keys: [String] { members.map(\.key) }

    /// The position of the member named `key`.
    @inlinable
    public func index(forKey key: String) -> Int? {
        members.firstIndex { $0.key.isKey(key) }
    }

    /// The value of a member; setting `nil` removes the member, setting a new key appends it.
    public subscript(key: String) -> JSONValue? {
        get {
            guard let i = index(forKey: key) else { return nil }
            return members[i].value
        }
        set {
            if let i = index(forKey: key) {
                if let newValue {
                    members[i].value = newValue
                } else {
                    members.remove(at: i)
                }
            } else if let newValue {
                members.append(Member(key: key, value: newValue))
            }
        }
    }

    /// Removes and returns the value named `key`.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let i = index(forKey: key) else { return nil }
        return members.remove(at: i).value
    }

    /// Appends a member without looking for an existing one; the caller guarantees the key is new.
    mutating func appendUnique(key: String, value: JSONValue) {
        members.append(Member(key: key, value: value))
    }

    /// Gives `body` in-place access to the value at `position`, so that nested containers are not
    /// copied when they are uniquely referenced.
    mutating func modifyValue<R, E: Error>(
        at position: Int,
        _ body: (inout JSONValue) throws(E) -> R
    ) throws(E) -> R {
        try body(&members[position].value)
    }

    /// Equality regardless of member order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        // Same order is the common case and costs one pass.
        var inOrder = true
        for i in lhs.members.indices where lhs.members[i].key != rhs.members[i].key {
            inOrder = false
            break
        }
        if inOrder {
            for i in lhs.members.indices where lhs.members[i].value != rhs.members[i].value { return false }
            return true
        }
        if lhs.members.count > 16 {
            var index = [String: Int](minimumCapacity: rhs.members.count)
            for (i, m) in rhs.members.enumerated() { index[m.key] = i }
            for m in lhs.members {
                guard let j = index[m.key], rhs.members[j].value == m.value else { return false }
            }
            return true
        }
        for m in lhs.members {
            guard let other = rhs[m.key], other == m.value else { return false }
        }
        return true
    }
}

extension String {
    /// Equality of object keys, lengths first: most keys that differ differ in length, and
    /// comparing two counts is cheaper than comparing two strings.
    @inlinable
    func isKey(_ other: String) -> Bool {
        utf8.count == other.utf8.count && self == other
    }
}
