//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

extension JSONValue {
    /// The compact JSON text (no insignificant white space) as UTF-8 bytes.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(to: &out)
        return out
    }

    /// The compact JSON text.
    public var jsonText: String { String(decoding: serialized(), as: UTF8.self) }

    /// Indented JSON text (two spaces per level), for people to read.
    public var prettyJSONText: String {
        var out: [UInt8] = []
        JSONWriter.writePretty(self, indent: 0, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the compact JSON text to `out`.
    public func write(to out: inout [UInt8]) {
        JSONWriter.write(self, to: &out)
    }
}

extension JSONObject {
    /// The compact JSON text of the object.
    public func serialized() -> [UInt8] { JSONValue.object(self).serialized() }
}

/// Writes JSON text into byte buffers. Strings are escaped minimally (quote, backslash and control
/// characters); everything else, non-ASCII included, is written as UTF-8.
public enum JSONWriter {
    /// Appends the compact JSON text of `value`.
    public static func write(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null:
            append("null", to: &out)
        case .bool(let b):
            append(b ? "true" : "false", to: &out)
        case .integer(let i):
            writeInteger(i, to: &out)
        case .number(let n):
            out.append(contentsOf: n.literal.utf8)
        case .string(let s):
            writeString(s, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                write(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            var first = true
            for member in object.members {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                write(member.value, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writePretty(_ value: JSONValue, indent: Int, to out: inout [UInt8]) {
        func newline(_ level: Int) {
            out.append(UInt8(ascii: "\n"))
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: level * 2))
        }
        switch value {
        case .array(let elements) where !elements.isEmpty:
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                writePretty(element, indent: indent + 1, to: &out)
            }
            newline(indent)
            out.append(UInt8(ascii: "]"))
        case .object(let object) where !object.isEmpty:
            out.append(UInt8(ascii: "{"))
            for (i, member) in object.members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                writeString(member.key, to: &out)
                out.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: " ")])
                writePretty(member.value, indent: indent + 1, to: &out)
            }
            newline(indent)
            out.append(UInt8(ascii: "}"))
        default:
            write(value, to: &out)
        }
    }

    @inline(__always)
    static func append(_ literal: String, to out: inout [UInt8]) {
        out.append(contentsOf: literal.utf8)
    }

    /// Appends the decimal digits of `value`.
    public static func writeInteger(_ value: Int64, to out: inout [UInt8]) {
        if value >= 0 && value < 10 {
            out.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits = 0
        var probe = magnitude
        repeat {
            digits += 1
            probe /= 10
        } while probe != 0
        let start = out.count
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
        var k = start + digits - 1
        repeat {
            out[k] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
            k -= 1
        } while magnitude != 0
    }

    /// Appends UTF-8 text as a quoted, escaped JSON string (the bytes must be valid UTF-8).
    public static func writeString(utf8 bytes: [UInt8], to out: inout [UInt8]) {
        let span = bytes.span
        for i in span.indices {
            let b = span[i]
            if b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                writeString(String(decoding: bytes, as: UTF8.self), to: &out)
                return
            }
        }
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: bytes)
        out.append(UInt8(ascii: "\""))
    }

    /// Appends `string` as a quoted, escaped JSON string.
    public static func writeString(_ string: String, to out: inout [UInt8]) {
        // One pass copies the common case (nothing to escape); the rare string that needs
        // escaping is rewritten byte by byte.
        let span = string.utf8.span
        let start = out.count
        var clean = true
        out.append(addingCapacity: span.count + 2) { output in
            output.append(UInt8(ascii: "\""))
            for i in span.indices {
                let b = span[i]
                if b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                    clean = false
                    return
                }
                output.append(b)
            }
            output.append(UInt8(ascii: "\""))
        }
        if clean { return }
        out.removeSubrange(start...)
        out.append(UInt8(ascii: "\""))
        for i in span.indices {
            let b = span[i]
            switch b {
            case UInt8(ascii: "\""): append("\\\"", to: &out)
            case UInt8(ascii: "\\"): append("\\\\", to: &out)
            case 0x0A: append("\\n", to: &out)
            case 0x0D: append("\\r", to: &out)
            case 0x09: append("\\t", to: &out)
            case 0x08: append("\\b", to: &out)
            case 0x0C: append("\\f", to: &out)
            case 0..<0x20:
                append("\\u00", to: &out)
                out.append(UInt8(ascii: "0") + (b >> 4))
                let low = b & 0x0F
                out.append(low < 10 ? UInt8(ascii: "0") + low : UInt8(ascii: "a") + low - 10)
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
