//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A set of TaskStatus properties, as one word of bits (no hashing, no allocation).
public struct TaskPropertySet: Sendable, Equatable, Sequence {
    public private(set) var bits: UInt32 = 0

    public init() {}

    public init(_ properties: some Sequence<TaskProperty>) {
        for property in properties { insert(property) }
    }

    public static var all: TaskPropertySet { TaskPropertySet(TaskProperty.allCases) }

    public mutating func insert(_ property: TaskProperty) { bits |= 1 << UInt32(property.index) }
    public mutating func formUnion(_ other: TaskPropertySet) { bits |= other.bits }
    public func contains(_ property: TaskProperty) -> Bool { bits & (1 << UInt32(property.index)) != 0 }
    public var isEmpty: Bool { bits == 0 }
    public var count: Int { bits.nonzeroBitCount }

    /// The properties in schema order.
    public func makeIterator() -> Iterator { Iterator(bits: bits) }

    public struct Iterator: IteratorProtocol {
        var bits: UInt32

        public mutating func next() -> TaskProperty? {
            guard bits != 0 else { return nil }
            let index = bits.trailingZeroBitCount
            bits &= bits - 1
            return TaskProperty.allCases[index]
        }
    }
}
