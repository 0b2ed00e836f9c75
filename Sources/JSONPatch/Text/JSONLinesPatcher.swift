//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Handles a stream of JSON Lines requests `{"doc":...,"patch":[...]}` held in a buffer, one line
/// after the other, exactly as ``JSONTextPatcher/processLine(_:in:appendingTo:)`` handles each.
///
/// It does not look for the end of a line before it reads it: the scan that checks a canonical
/// line stops at its newline. And it keeps its working storage from line to line.
public struct JSONLinesPatcher: Sendable {
    public var patcher: JSONTextPatcher
    private var scratch = JSONScanner.Scratch()
    private var bounds: [Int] = []

    public init(parser: JSONParser = JSONParser()) {
        self.patcher = JSONTextPatcher(parser: parser)
        bounds.reserveCapacity(256)
    }

    /// Handles the line that starts at `start` in `bytes`: appends its output line to `out` and
    /// returns where the next line starts (after the newline, or `bytes.count` for a last line
    /// without one).
    ///
    /// Returns `nil`, with nothing appended, when `bytes` holds no newline from `start` on and
    /// `atEnd` is false (the line may go on in input not read yet), or when nothing is left.
    /// - Parameter atEnd: whether `bytes` ends the input, so that a line without a newline is whole.
    public mutating func processLine(in bytes: [UInt8], from start: Int, atEnd: Bool, appendingTo out: inout [UInt8]) -> Int? {
        guard start < bytes.count else { return nil }
        let limits = patcher.parser.limits
        bounds.removeAll(keepingCapacity: true)
        let verdict = JSONScanner.scanLine(bytes, from: start, maxDepth: limits.maxDepth, containerBounds: &bounds, scratch: &scratch)
        let end: Int
        switch verdict {
        case .canonical(let lineEnd, let compact):
            if lineEnd == bytes.count && !atEnd { return nil }
            end = lineEnd
            if end - start <= limits.maxBytes {
                let patcher = self.patcher
                let bounds = self.bounds
                patcher.writeLine(to: &out) { (out: inout [UInt8]) throws(JSONTextPatcher.LineError) in
                    try patcher.processCanonicalLine(
                        bytes,
                        in: patcher.trimmed(bytes, start..<end),
                        compact: compact,
                        bounds: bounds,
                        appendingTo: &out
                    )
                }
                return end < bytes.count ? end + 1 : end
            }
        case .needsParser(let from):
            var newline = from
            while newline < bytes.count, bytes[newline] != 0x0A { newline += 1 }
            if newline == bytes.count && !atEnd { return nil }
            end = newline
        }
        let patcher = self.patcher
        patcher.writeLine(to: &out) { (out: inout [UInt8]) throws(JSONTextPatcher.LineError) in
            try patcher.processParsedLine(bytes, in: start..<end, appendingTo: &out)
        }
        return end < bytes.count ? end + 1 : end
    }
}
