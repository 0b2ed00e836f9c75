//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// The change feed's cap by entries and by bytes. Redis trims a stream by count only (`MAXLEN`),
/// so the byte budget becomes a count: the budget over the average size of recent entries, which
/// each `XADD` asks for. Bytes are the entries' payloads; Redis adds its own overhead per entry.
struct FeedBound {
    let maxEntries: Int
    let maxBytes: Int
    /// The average entry, moving: 1/16 of each new entry's weight.
    private(set) var averageBytes: Double
    private var lastLength = -1
    private var lastText: [UInt8] = []

    init(maxEntries: Int, maxBytes: Int) {
        self.maxEntries = max(1, maxEntries)
        self.maxBytes = max(1, maxBytes)
        self.averageBytes = 0
    }

    /// The `MAXLEN` for an entry of `bytes`: at most `maxEntries`, and no more entries than the
    /// byte budget holds at the current average size (one at least).
    mutating func length(adding bytes: Int) -> Int {
        averageBytes = averageBytes == 0 ? Double(bytes) : averageBytes + (Double(bytes) - averageBytes) / 16
        guard averageBytes >= 1 else { return maxEntries }
        return max(1, min(maxEntries, Int(Double(maxBytes) / averageBytes)))
    }

    /// ``length(adding:)`` as the command's argument text (made again only when it changes).
    mutating func lengthText(adding bytes: Int) -> [UInt8] {
        let n = length(adding: bytes)
        if n != lastLength {
            lastLength = n
            lastText = Array(String(n).utf8)
        }
        return lastText
    }
}
