//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Commands for one round trip: every argument of every command back to back in one buffer,
/// with their lengths, so that building a batch costs a few allocations whatever its size, and
/// the connection hands hiredis pointers into the buffer without copying the arguments again.
public struct RedisPipeline: Sendable, Equatable {
    /// All argument bytes, back to back.
    public private(set) var buffer: [UInt8] = []
    /// The length of each argument in `buffer`.
    public private(set) var lengths: [Int] = []
    /// The number of arguments of each command.
    public internal(set) var argumentCounts: [Int] = []

    public init() {}

    /// Reserves room for `bytes` of arguments in `arguments` arguments of `commands` commands.
    public mutating func reserveCapacity(bytes: Int, arguments: Int, commands: Int) {
        buffer.reserveCapacity(bytes)
        lengths.reserveCapacity(arguments)
        argumentCounts.reserveCapacity(commands)
    }

    /// Empties the pipeline, keeping its storage for the next round trip (large buffers are
    /// expensive to map afresh every time).
    public mutating func removeAll() {
        buffer.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
        argumentCounts.removeAll(keepingCapacity: true)
    }

    /// The number of commands.
    public var count: Int { argumentCounts.count }
    public var isEmpty: Bool { argumentCounts.isEmpty }

    /// Starts a new command with its name; its arguments follow with `add`.
    public mutating func begin(_ name: String) {
        argumentCounts.append(0)
        add(name)
    }

    /// Adds one argument to the command begun last.
    public mutating func add(_ argument: some RedisArgument) {
        argument.append(to: &self)
    }

    /// Adds one argument made of raw bytes.
    public mutating func addBytes(_ bytes: some Collection<UInt8>) {
        let before = buffer.count
        buffer.append(contentsOf: bytes)
        lengths.append(buffer.count - before)
        argumentCounts[argumentCounts.count - 1] += 1
    }

    /// Adds one argument made of two texts (a key prefix and an id, say) without building the
    /// joined text first.
    public mutating func add(joining first: String, _ second: String) {
        let before = buffer.count
        buffer.append(contentsOf: first.utf8)
        buffer.append(contentsOf: second.utf8)
        lengths.append(buffer.count - before)
        argumentCounts[argumentCounts.count - 1] += 1
    }

    /// Adds one argument made of three or four texts.
    public mutating func add(joining first: String, _ second: String, _ third: String, _ fourth: String = "") {
        let before = buffer.count
        buffer.append(contentsOf: first.utf8)
        buffer.append(contentsOf: second.utf8)
        buffer.append(contentsOf: third.utf8)
        buffer.append(contentsOf: fourth.utf8)
        lengths.append(buffer.count - before)
        argumentCounts[argumentCounts.count - 1] += 1
    }

    /// Adds a whole command.
    public mutating func append(_ command: RedisCommand) {
        argumentCounts.append(command.pipeline.lengths.count)
        buffer.append(contentsOf: command.pipeline.buffer)
        lengths.append(contentsOf: command.pipeline.lengths)
    }

    /// The arguments of command `index`, one array each (for tests and logs).
    public func arguments(of index: Int) -> [[UInt8]] {
        var argument = argumentCounts[..<index].reduce(0, +)
        var start = lengths[..<argument].reduce(0, +)
        var result: [[UInt8]] = []
        for _ in 0..<argumentCounts[index] {
            result.append(Array(buffer[start..<(start + lengths[argument])]))
            start += lengths[argument]
            argument += 1
        }
        return result
    }
}

/// One command: its arguments as binary-safe byte strings.
public struct RedisCommand: Sendable, Equatable, CustomStringConvertible {
    var pipeline: RedisPipeline

    public init(arguments: [[UInt8]]) {
        pipeline = RedisPipeline()
        pipeline.reserveCapacity(bytes: arguments.reduce(0) { $0 + $1.count }, arguments: arguments.count, commands: 1)
        pipeline.argumentCounts.append(0)
        for argument in arguments { pipeline.addBytes(argument) }
    }

    public init(_ name: String, _ arguments: any RedisArgument...) {
        self.init(name, arguments: arguments)
    }

    public init(_ name: String, arguments: [any RedisArgument]) {
        pipeline = RedisPipeline()
        pipeline.reserveCapacity(
            bytes: arguments.reduce(name.utf8.count) { $0 + $1.redisByteCount },
            arguments: arguments.count + 1,
            commands: 1
        )
        pipeline.begin(name)
        for argument in arguments { argument.append(to: &pipeline) }
    }

    /// The arguments, one array each, the command name first.
    public var arguments: [[UInt8]] { pipeline.arguments(of: 0) }

    /// Appends one argument.
    public mutating func append(_ argument: some RedisArgument) {
        argument.append(to: &pipeline)
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
    /// Appends the value as one argument of the command begun last.
    func append(to pipeline: inout RedisPipeline)
    /// The argument's length in bytes.
    var redisByteCount: Int { get }
}

extension String: RedisArgument {
    public func append(to pipeline: inout RedisPipeline) { pipeline.addBytes(utf8) }
    public var redisByteCount: Int { utf8.count }
}

extension Substring: RedisArgument {
    public func append(to pipeline: inout RedisPipeline) { pipeline.addBytes(utf8) }
    public var redisByteCount: Int { utf8.count }
}

extension Array: RedisArgument where Element == UInt8 {
    public func append(to pipeline: inout RedisPipeline) { pipeline.addBytes(self) }
    public var redisByteCount: Int { count }
}

extension ArraySlice: RedisArgument where Element == UInt8 {
    public func append(to pipeline: inout RedisPipeline) { pipeline.addBytes(self) }
    public var redisByteCount: Int { count }
}

extension Int: RedisArgument {
    public func append(to pipeline: inout RedisPipeline) { Int64(self).append(to: &pipeline) }
    public var redisByteCount: Int { Int64(self).redisByteCount }
}

extension Int64: RedisArgument {
    // Numbers of up to 15 digits are small strings: no allocation.
    public func append(to pipeline: inout RedisPipeline) { pipeline.addBytes(String(self).utf8) }
    public var redisByteCount: Int { String(self).utf8.count }
}
