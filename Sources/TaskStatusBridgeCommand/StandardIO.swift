//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation

/// Reads a whole file, or standard input for `-`.
func readInput(_ path: String) throws -> [UInt8] {
    if path == "-" {
        return [UInt8](FileHandle.standardInput.readDataToEndOfFile())
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationFailure("cannot read \(path)")
    }
    return [UInt8](data)
}

/// A failure that the command reports as a message and a non-zero exit.
struct ValidationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Reads standard input in large chunks and hands out where each line starts, so that a stream
/// of any length is processed in bounded memory. The consumer finds each line's end itself (the
/// patcher's scan stops at it).
struct LineReader {
    private var buffer: [UInt8] = []
    private var lineStart = 0
    /// `buffer[lineStart..<scanFrom]` holds no newline.
    private var scanFrom = 0
    private var atEnd = false
    private let handle: FileHandle
    private let chunkSize: Int

    init(handle: FileHandle = .standardInput, chunkSize: Int = 1 << 20) {
        self.handle = handle
        self.chunkSize = chunkSize
    }

    private static func hasNewline(_ span: Span<UInt8>, from start: Int) -> Bool {
        var i = start
        while i < span.count {
            if span[i] == UInt8(ascii: "\n") { return true }
            i += 1
        }
        return false
    }

    /// Calls `body` with the buffer, the start of a line and whether the buffer ends the input,
    /// until the input ends. `body` handles the line and returns where the next one starts, or
    /// `nil` when the buffer holds no newline from the start on (and does not end the input).
    mutating func forEachLine(_ body: (_ buffer: [UInt8], _ start: Int, _ atEnd: Bool) -> Int?) {
        while true {
            // Try the line when nothing is known about it yet, or when its newline has arrived.
            if lineStart < buffer.count, scanFrom == lineStart || atEnd || Self.hasNewline(buffer.span, from: scanFrom),
                let next = body(buffer, lineStart, atEnd)
            {
                lineStart = next
                scanFrom = next
                continue
            }
            if atEnd { return }
            let chunk = handle.readData(ofLength: chunkSize)
            if chunk.isEmpty { atEnd = true }
            // Keep the unfinished line, drop what was consumed.
            buffer.removeSubrange(0..<lineStart)
            scanFrom = buffer.count
            lineStart = 0
            buffer.append(contentsOf: chunk)
        }
    }
}

/// Buffers output and writes it in large blocks.
struct OutputBuffer {
    var bytes: [UInt8] = []
    private let handle: FileHandle
    private let flushAt: Int

    init(handle: FileHandle = .standardOutput, flushAt: Int = 1 << 20) {
        self.handle = handle
        self.flushAt = flushAt
        bytes.reserveCapacity(flushAt + (flushAt >> 2))
    }

    mutating func flushIfFull() {
        if bytes.count >= flushAt { flush() }
    }

    mutating func flush() {
        guard !bytes.isEmpty else { return }
        // Written from the array itself, not a copy of it.
        try! handle.write(contentsOf: bytes)
        bytes.removeAll(keepingCapacity: true)
    }
}
