//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 date-times: checked as text (they are stored as given), and the current time
/// written the way the bridge stamps `modified`.
public enum RFC3339 {
    /// Whether `text` is an RFC 3339 `date-time` (`2020-07-11T21:23:15.000Z`, `...+02:00`).
    public static func isValid(_ text: String) -> Bool {
        // Every update checks a date (its `modified` stamp at least): read the bytes in place.
        var text = text
        return text.withUTF8 { isValid(utf8: $0) }
    }

    private static func isValid(utf8 b: UnsafeBufferPointer<UInt8>) -> Bool {
        func digits(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= b.count else { return nil }
            var v = 0
            for i in start..<(start + count) {
                let d = b[i] &- UInt8(ascii: "0")
                guard d <= 9 else { return nil }
                v = v * 10 + Int(d)
            }
            return v
        }
        guard let year = digits(0, 4), b.count >= 20, b[4] == UInt8(ascii: "-"), let month = digits(5, 2), b[7] == UInt8(ascii: "-"),
            let day = digits(8, 2), b[10] | 0x20 == UInt8(ascii: "t"), let hour = digits(11, 2), b[13] == UInt8(ascii: ":"),
            let minute = digits(14, 2), b[16] == UInt8(ascii: ":"), let second = digits(17, 2)
        else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays: Int
        switch month {
        case 2: monthDays = leap ? 29 : 28
        case 4, 6, 9, 11: monthDays = 30
        default: monthDays = 31
        }
        guard (1...12).contains(month), (1...monthDays).contains(day), hour <= 23, minute <= 59, second <= 60 else {
            return false
        }
        var i = 19
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            let start = i
            while i < b.count, b[i] &- UInt8(ascii: "0") <= 9 { i += 1 }
            guard i > start else { return false }
        }
        guard i < b.count else { return false }
        if b[i] | 0x20 == UInt8(ascii: "z") { return i + 1 == b.count }
        guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), let oh = digits(i + 1, 2), i + 3 < b.count,
            b[i + 3] == UInt8(ascii: ":"), let om = digits(i + 4, 2), i + 6 == b.count
        else { return false }
        return oh <= 23 && om <= 59
    }

    /// The milliseconds since the Unix epoch of an RFC 3339 date-time (its offset applied, digits
    /// past the millisecond dropped); `nil` for text ``isValid(_:)`` refuses.
    public static func unixMilliseconds(of text: some StringProtocol) -> Int64? {
        let b = Array(text.utf8)
        guard isValid(String(decoding: b, as: UTF8.self)) else { return nil }
        func digits(_ start: Int, _ count: Int) -> Int64 {
            var v: Int64 = 0
            for i in start..<(start + count) { v = v * 10 + Int64(b[i] - UInt8(ascii: "0")) }
            return v
        }
        var (year, month) = (digits(0, 4), digits(5, 2))
        let day = digits(8, 2)
        // Days from civil (Howard Hinnant's algorithm), the inverse of ``format``.
        year -= month <= 2 ? 1 : 0
        let era = (year >= 0 ? year : year - 399) / 400
        let yoe = year - era * 400
        month = month > 2 ? month - 3 : month + 9
        let doy = (153 * month + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        var seconds = days * 86400 + digits(11, 2) * 3600 + digits(14, 2) * 60 + min(digits(17, 2), 59)
        var i = 19
        var millis: Int64 = 0
        if b[i] == UInt8(ascii: ".") {
            i += 1
            var scale: Int64 = 100
            while i < b.count, b[i] &- UInt8(ascii: "0") <= 9 {
                millis += Int64(b[i] - UInt8(ascii: "0")) * scale
                scale /= 10
                i += 1
            }
        }
        if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let offset = digits(i + 1, 2) * 3600 + digits(i + 4, 2) * 60
            seconds += b[i] == UInt8(ascii: "+") ? -offset : offset
        }
        return seconds * 1000 + millis
    }

    /// Milliseconds since the Unix epoch.
    public static func unixMilliseconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    }

    /// The current time in UTC with milliseconds: `2026-11-29T02:30:00.123Z`.
    public static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return format(seconds: Int64(ts.tv_sec), milliseconds: Int(ts.tv_nsec / 1_000_000))
    }

    /// Formats a Unix time in UTC with milliseconds.
    public static func format(seconds: Int64, milliseconds: Int) -> String {
        // Days since the epoch to a civil date (Howard Hinnant's algorithm).
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = Int(seconds - days * 86400)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        // Every update stamps `modified`: the 24 bytes are written in place, no interpolation.
        guard (0...9999).contains(year) else {
            func pad(_ v: Int64, _ width: Int) -> String {
                let s = String(v)
                return String(repeating: "0", count: max(0, width - s.count)) + s
            }
            return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(Int64(secondOfDay / 3600), 2)):"
                + "\(pad(Int64(secondOfDay / 60 % 60), 2)):\(pad(Int64(secondOfDay % 60), 2)).\(pad(Int64(milliseconds), 3))Z"
        }
        return String(unsafeUninitializedCapacity: 24) { b in
            func put(_ value: Int, at start: Int, width: Int) {
                var v = value
                for i in stride(from: start + width - 1, through: start, by: -1) {
                    b[i] = UInt8(ascii: "0") + UInt8(v % 10)
                    v /= 10
                }
            }
            put(Int(year), at: 0, width: 4)
            b[4] = UInt8(ascii: "-")
            put(Int(month), at: 5, width: 2)
            b[7] = UInt8(ascii: "-")
            put(Int(day), at: 8, width: 2)
            b[10] = UInt8(ascii: "T")
            put(secondOfDay / 3600, at: 11, width: 2)
            b[13] = UInt8(ascii: ":")
            put(secondOfDay / 60 % 60, at: 14, width: 2)
            b[16] = UInt8(ascii: ":")
            put(secondOfDay % 60, at: 17, width: 2)
            b[19] = UInt8(ascii: ".")
            put(min(max(milliseconds, 0), 999), at: 20, width: 3)
            b[23] = UInt8(ascii: "Z")
            return 24
        }
    }
}
