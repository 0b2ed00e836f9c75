//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Commands for one round trip, already in the wire format (RESP): every argument of every
/// command back to back in one buffer as `$<length>\r\n<bytes>\r\n`, so that building a batch
/// costs a few allocations whatever its size and sending it is one copy and one `write`.
public struct RedisPipeline: Sendable, Equatable {
    // Building a batch is the bridge's hottest loop: the methods that add arguments are
    // inlinable so that callers in other modules get them specialized, not through witness tables.

    /// The arguments of every command, in RESP, back to back.
    @usableFromInline var bytes: [UInt8] = []
    /// Where each command's arguments start in `bytes`.
    @usableFromInline var commandStarts: [Int] = []
    /// The number of arguments of each command.
    @usableFromInline var counts: [Int] = []

    public init() {}

    /// The commands, in order.
    public init(_ commands: [RedisCommand]) {
        for command in commands { append(command) }
    }

    /// The arguments of every command, in RESP, back to back.
    public var buffer: [UInt8] { bytes }
    /// The number of arguments of each command.
    public var argumentCounts: [Int] { counts }

    /// Reserves room for `bytes` of arguments in `arguments` arguments of `commands` commands.
    public mutating func reserveCapacity(bytes byteCount: Int, arguments: Int, commands: Int) {
        bytes.reserveCapacity(byteCount + arguments * 8)
        commandStarts.reserveCapacity(commands)
        counts.reserveCapacity(commands)
    }

    /// Empties the pipeline, keeping its storage for the next round trip (large buffers are
    /// expensive to map afresh every time).
    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        commandStarts.removeAll(keepingCapacity: true)
        counts.removeAll(keepingCapacity: true)
    }

    /// The number of commands.
    public var count: Int { counts.count }
    public var isEmpty: Bool { counts.isEmpty }

    /// Starts a new command with its name; its arguments follow with `add`.
    @inlinable
    public mutating func begin(_ name: some RedisArgument) {
        beginCommand()
        add(name)
    }

    /// Starts a new command whose name is added as its first argument.
    @inlinable
    mutating func beginCommand() {
        commandStarts.append(bytes.count)
        counts.append(0)
    }

    /// Adds one argument to the command begun last.
    @inlinable
    public mutating func add(_ argument: some RedisArgument) {
        argument.append(to: &self)
    }

    /// Adds one argument made of raw bytes.
    @inlinable
    public mutating func addBytes(_ argument: some Collection<UInt8>) {
        startArgument(length: argument.count)
        bytes.append(contentsOf: argument)
        endArgument()
    }

    /// Adds one argument made of three byte strings (a head, a body and a tail, say) without
    /// building the joined bytes first.
    @inlinable
    public mutating func addBytes(joining first: some Collection<UInt8>, _ second: some Collection<UInt8>, _ third: some Collection<UInt8>) {
        startArgument(length: first.count + second.count + third.count)
        bytes.append(contentsOf: first)
        bytes.append(contentsOf: second)
        bytes.append(contentsOf: third)
        endArgument()
    }

    /// Adds one argument made of two texts (a key prefix and an id, say) without building the
    /// joined text first.
    @inlinable
    public mutating func add(joining first: String, _ second: String) {
        startArgument(length: first.utf8.count + second.utf8.count)
        bytes.append(contentsOf: first.utf8)
        bytes.append(contentsOf: second.utf8)
        endArgument()
    }

    /// Adds one argument made of three or four texts.
    @inlinable
    public mutating func add(joining first: String, _ second: String, _ third: String, _ fourth: String = "") {
        startArgument(length: first.utf8.count + second.utf8.count + third.utf8.count + fourth.utf8.count)
        bytes.append(contentsOf: first.utf8)
        bytes.append(contentsOf: second.utf8)
        bytes.append(contentsOf: third.utf8)
        bytes.append(contentsOf: fourth.utf8)
        endArgument()
    }

    /// Adds one argument: a number in decimal.
    @inlinable
    public mutating func add(decimal value: Int64) {
        let magnitude = value.magnitude
        startArgument(length: Self.digitCount(magnitude) + (value < 0 ? 1 : 0))
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        appendDigits(magnitude)
        endArgument()
    }

    /// Adds a whole command.
    public mutating func append(_ command: RedisCommand) {
        let other = command.pipeline
        for (k, start) in other.commandStarts.enumerated() {
            commandStarts.append(bytes.count + start)
            counts.append(other.counts[k])
        }
        bytes.append(contentsOf: other.buffer)
    }

    /// The arguments of command `index`, one array each (for tests and logs).
    public func arguments(of index: Int) -> [[UInt8]] {
        var result: [[UInt8]] = []
        walkArguments(of: index) { _, range in
            result.append(Array(bytes[range]))
            return true
        }
        return result
    }

    /// Calls `body` with each argument's place in `bytes`, in order, until it returns false.
    private func walkArguments(of index: Int, _ body: (Int, Range<Int>) -> Bool) {
        var position = commandStarts[index]
        for k in 0..<counts[index] {
            // `$<length>\r\n<bytes>\r\n`
            position += 1
            var length = 0
            while bytes[position] != UInt8(ascii: "\r") {
                length = length * 10 + Int(bytes[position] - UInt8(ascii: "0"))
                position += 1
            }
            position += 2
            guard body(k, position..<(position + length)) else { return }
            position += length + 2
        }
    }

    /// The bytes of argument `argument` of command `index` (the name is argument 0), or `nil`
    /// when the command has fewer arguments: read in place, for routing a command by its key.
    public func argument(_ argument: Int, of index: Int) -> ArraySlice<UInt8>? {
        guard argument < counts[index] else { return nil }
        var found: Range<Int>?
        walkArguments(of: index) { k, range in
            if k == argument { found = range }
            return k < argument
        }
        return found.map { bytes[$0] }
    }

    /// Adds command `index` of another pipeline, as it is.
    public mutating func append(command index: Int, of other: RedisPipeline) {
        let start = other.commandStarts[index]
        let end = index + 1 < other.commandStarts.count ? other.commandStarts[index + 1] : other.bytes.count
        commandStarts.append(bytes.count)
        counts.append(other.counts[index])
        bytes.append(contentsOf: other.bytes[start..<end])
    }

    /// Appends the commands in RESP, each with its `*<count>` header, to `wire`.
    func write(to wire: inout [UInt8]) {
        // Grow geometrically: reserving the exact size each round trip would reallocate (and
        // fault in fresh pages) every time a batch is a little larger than the last.
        let needed = wire.count + bytes.count + count * 12
        if wire.capacity < needed { wire.reserveCapacity(max(needed, 2 * wire.capacity)) }
        for (k, start) in commandStarts.enumerated() {
            let end = k + 1 < commandStarts.count ? commandStarts[k + 1] : bytes.count
            wire.append(UInt8(ascii: "*"))
            Self.appendDigits(UInt64(counts[k]), to: &wire)
            wire.append(13)
            wire.append(10)
            wire.append(contentsOf: bytes[start..<end])
        }
    }

    @inlinable
    mutating func startArgument(length: Int) {
        counts[counts.count - 1] += 1
        Self.appendBulkHeader(UInt64(length), to: &bytes)
    }

    /// Appends `$<length>\r\n` in one piece: every argument starts with one.
    @inlinable
    static func appendBulkHeader(_ length: UInt64, to output: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { header in
            header[22] = 13
            header[23] = 10
            var position = 22
            var rest = length
            repeat {
                position -= 1
                header[position] = UInt8(truncatingIfNeeded: rest % 10) &+ 48
                rest /= 10
            } while rest > 0
            position -= 1
            header[position] = UInt8(ascii: "$")
            output.append(contentsOf: UnsafeBufferPointer(rebasing: header[position..<24]))
        }
    }

    @inlinable
    mutating func endArgument() {
        bytes.append(13)
        bytes.append(10)
    }

    @inlinable
    mutating func appendDigits(_ value: UInt64) {
        Self.appendDigits(value, to: &bytes)
    }

    @inlinable
    static func digitCount(_ value: UInt64) -> Int {
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        return digits
    }

    @inlinable
    static func appendDigits(_ value: UInt64, to output: inout [UInt8]) {
        if value < 10 {
            output.append(UInt8(truncatingIfNeeded: value) &+ 48)
            return
        }
        // Digits come out last first: write them at the end of a small buffer, then copy.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var position = 20
            var rest = value
            while rest > 0 {
                position -= 1
                digits[position] = UInt8(truncatingIfNeeded: rest % 10) &+ 48
                rest /= 10
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: digits[position..<20]))
        }
    }
}

/// One command: its arguments as binary-safe byte strings.
public struct RedisCommand: Sendable, Equatable, CustomStringConvertible {
    var pipeline: RedisPipeline

    public init(arguments: [[UInt8]]) {
        pipeline = RedisPipeline()
        pipeline.reserveCapacity(bytes: arguments.reduce(0) { $0 + $1.count }, arguments: arguments.count, commands: 1)
        pipeline.beginCommand()
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
    @inlinable public func append(to pipeline: inout RedisPipeline) { pipeline.addBytes(utf8) }
    public var redisByteCount: Int { utf8.count }
}

extension Substring: RedisArgument {
    @inlinable public func append(to pipeline: inout RedisPipeline) { pipeline.addBytes(utf8) }
    public var redisByteCount: Int { utf8.count }
}

extension Array: RedisArgument where Element == UInt8 {
    @inlinable public func append(to pipeline: inout RedisPipeline) { pipeline.addBytes(self) }
    public var redisByteCount: Int { count }
}

extension ArraySlice: RedisArgument where Element == UInt8 {
    @inlinable public func append(to pipeline: inout RedisPipeline) { pipeline.addBytes(self) }
    public var redisByteCount: Int { count }
}

extension Int: RedisArgument {
    @inlinable public func append(to pipeline: inout RedisPipeline) { Int64(self).append(to: &pipeline) }
    public var redisByteCount: Int { Int64(self).redisByteCount }
}

extension Int64: RedisArgument {
    @inlinable public func append(to pipeline: inout RedisPipeline) { pipeline.add(decimal: self) }
    public var redisByteCount: Int { RedisPipeline.digitCount(magnitude) + (self < 0 ? 1 : 0) }
}
