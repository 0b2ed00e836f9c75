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

/// Reads standard input in large chunks and hands out complete lines, so that a stream of any
/// length is processed in bounded memory.
struct LineReader {
    private var buffer: [UInt8] = []
    private var lineStart = 0
    private var scanFrom = 0
    private var atEnd = false
    private let handle: FileHandle
    private let chunkSize: Int

    init(handle: FileHandle = .standardInput, chunkSize: Int = 1 << 20) {
        self.handle = handle
        self.chunkSize = chunkSize
    }

    private static func firstNewline(_ span: Span<UInt8>, from start: Int) -> Int? {
        var i = start
        while i < span.count {
            if span[i] == UInt8(ascii: "\n") { return i }
            i += 1
        }
        return nil
    }

    /// Calls `body` with the buffer and the range of each line (without its newline).
    mutating func forEachLine(_ body: ([UInt8], Range<Int>) -> Void) {
        while true {
            if let newline = Self.firstNewline(buffer.span, from: scanFrom) {
                body(buffer, lineStart..<newline)
                lineStart = newline + 1
                scanFrom = lineStart
                continue
            }
            if atEnd {
                if lineStart < buffer.count { body(buffer, lineStart..<buffer.count) }
                return
            }
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
        handle.write(Data(bytes))
        bytes.removeAll(keepingCapacity: true)
    }
}
