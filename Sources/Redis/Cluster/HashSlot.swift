//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Redis Cluster's key slot, as `CLUSTER KEYSLOT` answers it: CRC16 (XMODEM) of the key's hash
/// tag, or of the whole key when it has none, modulo 16384.
///
/// The hash tag is what lies between the first `{` and the first `}` after it, when that is not
/// empty: `{user1000}.following` and `{user1000}.followers` share a slot, `foo{}{bar}` is hashed
/// whole. Every key of one task is `<prefix>:<kind>:{<id>}...`, so they all share the id's slot.
public enum HashSlot {
    /// How many slots a cluster has.
    public static let count = 16384

    /// The slot of a key given as bytes.
    public static func of(_ key: some Collection<UInt8>) -> Int {
        let bytes = Array(key)
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
            let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            return Int(crc16(bytes[(open + 1)..<close]) & 0x3FFF)
        }
        return Int(crc16(bytes) & 0x3FFF)
    }

    /// The slot of a key given as text (its UTF-8 bytes).
    public static func of(_ key: String) -> Int {
        of(Array(key.utf8))
    }

    /// A short hash tag whose slot is `slot` (a decimal number, the smallest that fits): for a
    /// key that must live on the node serving that slot.
    public static func tag(forSlot slot: Int) -> String {
        tags[slot]
    }

    private static let tags: [String] = {
        var found = [String](repeating: "", count: count)
        var missing = count
        var n = 0
        while missing > 0 {
            let text = String(n)
            let slot = Int(crc16(text.utf8) & 0x3FFF)
            if found[slot].isEmpty {
                found[slot] = text
                missing -= 1
            }
            n += 1
        }
        return found
    }()

    /// CRC16-CCITT as Redis Cluster uses it (XMODEM: polynomial 0x1021, initial value 0, no
    /// reflection); `"123456789"` gives 0x31C3.
    public static func crc16(_ bytes: some Collection<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { n in
        var crc = UInt16(n) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
