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
    let fields: [(field: [UInt8], value: [UInt8])]?

    /// Reads a list of `[id, [field, value, ...]]`.
    static func list(_ reply: RedisReply) -> [StreamEntry] {
        guard case .array(let items) = reply else { return [] }
        return items.compactMap { item in
            guard case .array(let parts) = item, parts.count == 2, let id = parts[0].string else { return nil }
            return StreamEntry(id: id, fields: parts[1].pairs)
        }
    }

    /// Reads an `XREADGROUP` reply: `[[stream, entries]]`, or null when nothing came.
    static func fromReadGroup(_ reply: RedisReply) -> [StreamEntry] {
        guard case .array(let streams) = reply, let first = streams.first, case .array(let pair) = first, pair.count == 2 else {
            return []
        }
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

    /// The smallest id after `id`.
    static func successor(of id: String) -> String {
        let (ms, seq) = parse(id)
        return seq == UInt64.max ? "\(ms + 1)-0" : "\(ms)-\(seq + 1)"
    }
}
