//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// One command: its arguments as binary-safe byte strings.
///
/// The arguments are kept back to back in one buffer with their lengths, so that building a
/// command costs one or two allocations whatever its size, and the connection hands hiredis
/// pointers into that buffer without copying the arguments again.
public struct RedisCommand: Sendable, Equatable, CustomStringConvertible {
    /// All argument bytes, back to back.
    public private(set) var buffer: [UInt8]
    /// The length of each argument in `buffer`, the command name first.
    public private(set) var lengths: [Int]

    public init(arguments: [[UInt8]]) {
        buffer = []
        buffer.reserveCapacity(arguments.reduce(0) { $0 + $1.count })
        lengths = []
        lengths.reserveCapacity(arguments.count)
        for argument in arguments { append(argument) }
    }

    public init(_ name: String, _ arguments: any RedisArgument...) {
        self.init(name, arguments: arguments)
    }

    public init(_ name: String, arguments: [any RedisArgument]) {
        buffer = []
        buffer.reserveCapacity(64)
        lengths = []
        lengths.reserveCapacity(arguments.count + 1)
        append(name)
        for argument in arguments { argument.append(to: &self) }
    }

    /// The arguments, one array each (for tests and logs).
    public var arguments: [[UInt8]] {
        var result: [[UInt8]] = []
        var start = 0
        for length in lengths {
            result.append(Array(buffer[start..<(start + length)]))
            start += length
        }
        return result
    }

    /// Appends one argument.
    public mutating func append(_ argument: some RedisArgument) {
        argument.append(to: &self)
    }

    /// Appends the bytes of one argument.
    public mutating func appendBytes(_ bytes: some Collection<UInt8>) {
        let before = buffer.count
        buffer.append(contentsOf: bytes)
        lengths.append(buffer.count - before)
    }

    /// The command as text, for logs (long arguments shortened).
    public var description: String {
        arguments.map { bytes in
            let text = String(decoding: bytes.prefix(64), as: UTF8.self)
            return bytes.count > 64 ? text + "..." : text
        }.joined(separator: " ")
    }
}

/// A value that can be a command argument.
public protocol RedisArgument: Sendable {
    /// Appends the value as one argument.
    func append(to command: inout RedisCommand)
}

extension String: RedisArgument {
    public func append(to command: inout RedisCommand) { command.appendBytes(utf8) }
}

extension Substring: RedisArgument {
    public func append(to command: inout RedisCommand) { command.appendBytes(utf8) }
}

extension Array: RedisArgument where Element == UInt8 {
    public func append(to command: inout RedisCommand) { command.appendBytes(self) }
}

extension Int: RedisArgument {
    public func append(to command: inout RedisCommand) { command.appendBytes(String(self).utf8) }
}

extension Int64: RedisArgument {
    public func append(to command: inout RedisCommand) { command.appendBytes(String(self).utf8) }
}
