//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Redis

/// One entry of a stream as `XREADGROUP`, `XCLAIM` and `XAUTOCLAIM` return it; `fields` is `nil`
/// for an entry that was deleted while pending.
struct StreamEntry: Sendable {
    let id: String
    /// Slices of the round trip's reply buffer: a batch's fields cost no allocation each.
    let fields: [(field: ArraySlice<UInt8>, value: ArraySlice<UInt8>)]?

    /// Reads a list of `[id, [field, value, ...]]`.
    static func list(_ value: RedisValue) -> [StreamEntry] {
        let items = value.elements
        var entries: [StreamEntry] = []
        entries.reserveCapacity(items.count)
        for item in items {
            let parts = item.elements
            guard parts.count == 2, let id = parts[0].string else { continue }
            let list = parts[1]
            guard list.kind == .array, list.elements.count % 2 == 0 else {
                entries.append(StreamEntry(id: id, fields: nil))
                continue
            }
            var fields: [(field: ArraySlice<UInt8>, value: ArraySlice<UInt8>)] = []
            fields.reserveCapacity(list.elements.count / 2)
            var iterator = list.elements.makeIterator()
            while let field = iterator.next()?.bytes, let value = iterator.next()?.bytes {
                fields.append((field, value))
            }
            entries.append(StreamEntry(id: id, fields: fields))
        }
        return entries
    }

    /// Reads an `XREADGROUP` reply: `[[stream, entries]]`, or null when nothing came.
    static func fromReadGroup(_ value: RedisValue) -> [StreamEntry] {
        let streams = value.elements
        guard !streams.isEmpty else { return [] }
        let pair = streams[0].elements
        guard pair.count == 2 else { return [] }
        return list(pair[1])
    }

    /// Stream ids compare as `ms-seq` pairs.
    static func compare(_ a: String, _ b: String) -> Bool {
        let pa = parse(a) ?? (0, 0)
        let pb = parse(b) ?? (0, 0)
        return pa.ms != pb.ms ? pa.ms < pb.ms : pa.seq < pb.seq
    }

    /// The two numbers of an id (`ms-seq`, or `ms` alone); `nil` for anything else. Read for
    /// every request (its age), so it reads the bytes without splitting the text.
    static func parse(_ id: String) -> (ms: UInt64, seq: UInt64)? {
        var numbers: (ms: UInt64, seq: UInt64) = (0, 0)
        var inSequence = false
        var digits = 0
        for byte in id.utf8 {
            if byte == UInt8(ascii: "-"), !inSequence, digits > 0 {
                inSequence = true
                digits = 0
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let current = inSequence ? numbers.seq : numbers.ms
            let (times10, overflow) = current.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflow, !overflow2 else { return nil }
            if inSequence { numbers.seq = next } else { numbers.ms = next }
            digits += 1
        }
        return digits > 0 ? numbers : nil
    }

    /// The smallest id after `id`.
    static func successor(of id: String) -> String {
        let (ms, seq) = parse(id) ?? (0, 0)
        return seq == UInt64.max ? "\(ms + 1)-0" : "\(ms)-\(seq + 1)"
    }
}
