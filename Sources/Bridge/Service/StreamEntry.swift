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
    static func list(_ reply: RedisReply) -> [StreamEntry] {
        guard case .array(let items) = reply else { return [] }
        return items.compactMap { item in
            guard case .array(let parts) = item, parts.count == 2, let id = parts[0].string else { return nil }
            return StreamEntry(id: id, fields: parts[1].pairs?.map { ($0.field[...], $0.value[...]) })
        }
    }

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
    static func fromReadGroup(_ reply: RedisReply) -> [StreamEntry] {
        guard case .array(let streams) = reply, let first = streams.first, case .array(let pair) = first, pair.count == 2 else {
            return []
        }
        return list(pair[1])
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
        let pa = parse(a)
        let pb = parse(b)
        return pa.0 != pb.0 ? pa.0 < pb.0 : pa.1 < pb.1
    }

    static func parse(_ id: String) -> (UInt64, UInt64) {
        let parts = id.split(separator: "-", maxSplits: 1)
        return (UInt64(parts.first ?? "0") ?? 0, parts.count > 1 ? UInt64(parts[1]) ?? 0 : 0)
    }

    /// The creation time of an entry, the milliseconds part of its id.
    static func milliseconds(of id: String) -> Int64? {
        var value: Int64 = 0
        var digits = 0
        for byte in id.utf8 {
            if byte == UInt8(ascii: "-") { break }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 18 else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// The smallest id after `id`.
    static func successor(of id: String) -> String {
        let (ms, seq) = parse(id)
        return seq == UInt64.max ? "\(ms + 1)-0" : "\(ms)-\(seq + 1)"
    }
}
