//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A JSON number that is not a 64-bit integer, kept as its literal text.
///
/// Keeping the text (rather than a `Double`) is what lets a document round-trip without loss:
/// `0.1`, `1E400` and `123456789012345678901234567890` come back exactly as they were written.
/// Equality compares exact decimal values, so `1.50 == 15e-1`.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The literal, exactly as it appeared in the document.
    public let literal: String

    /// Creates a number from JSON number text; `nil` when the text is not a JSON number.
    public init?(_ literal: String) {
        guard NumberGrammar.matches(Array(literal.utf8)) else { return nil }
        self.literal = literal
    }

    init(unchecked literal: String) {
        self.literal = literal
    }

    public var description: String { literal }

    /// The nearest `Double` (infinite when out of range).
    public var doubleValue: Double { Double(literal) ?? .nan }

    /// The value as an `Int64` when it is integral and in range (`2.0`, `3e1`), else `nil`.
    public var exactInt64: Int64? {
        let d = DecimalForm(literal)
        if d.digits.isEmpty { return 0 }
        guard d.exponent >= 0, d.digits.count + d.exponent <= 19 else { return nil }
        var magnitude: UInt64 = 0
        for digit in d.digits {
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(digit))
            if o1 || o2 { return nil }
            magnitude = s
        }
        for _ in 0..<d.exponent {
            let (m, o) = magnitude.multipliedReportingOverflow(by: 10)
            if o { return nil }
            magnitude = m
        }
        if d.negative {
            if magnitude == UInt64(Int64.max) + 1 { return Int64.min }
            return magnitude <= UInt64(Int64.max) ? -Int64(magnitude) : nil
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    /// Exact decimal equality.
    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        lhs.literal == rhs.literal || DecimalForm(lhs.literal) == DecimalForm(rhs.literal)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(DecimalForm(literal))
    }

    func isEqual(toInteger value: Int64) -> Bool {
        DecimalForm(literal) == DecimalForm(value)
    }
}

/// A number's exact value as sign, significant digits (no leading or trailing zeros) and a power
/// of ten; zero has no digits and no sign.
struct DecimalForm: Hashable {
    var negative = false
    var digits: [UInt8] = []
    var exponent = 0

    init(_ value: Int64) {
        var magnitude = value.magnitude
        while magnitude != 0 {
            digits.append(UInt8(magnitude % 10))
            magnitude /= 10
        }
        digits.reverse()
        negative = value < 0
        normalize()
    }

    init(_ literal: String) {
        var fractionDigits = 0
        var inFraction = false
        var exponentPart = 0
        var exponentNegative = false
        var inExponent = false
        for byte in literal.utf8 {
            switch byte {
            case UInt8(ascii: "-"):
                if inExponent { exponentNegative = true } else { negative = true }
            case UInt8(ascii: "+"):
                break
            case UInt8(ascii: "."):
                inFraction = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                inExponent = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                let digit = byte &- UInt8(ascii: "0")
                if inExponent {
                    // Saturate: exponents this large only meet each other.
                    exponentPart = exponentPart > 100_000_000_000 ? exponentPart : exponentPart * 10 + Int(digit)
                } else {
                    digits.append(digit)
                    if inFraction { fractionDigits += 1 }
                }
            default:
                break
            }
        }
        exponent = (exponentNegative ? -exponentPart : exponentPart) - fractionDigits
        normalize()
    }

    private mutating func normalize() {
        let leading = digits.prefix { $0 == 0 }.count
        digits.removeFirst(leading)
        while let last = digits.last, last == 0 {
            digits.removeLast()
            exponent += 1
        }
        if digits.isEmpty {
            negative = false
            exponent = 0
        }
    }
}

/// RFC 8259 number grammar: `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`.
enum NumberGrammar {
    static func matches(_ bytes: [UInt8]) -> Bool {
        var i = 0
        let n = bytes.count
        func digit(_ k: Int) -> Bool { k < n && bytes[k] >= UInt8(ascii: "0") && bytes[k] <= UInt8(ascii: "9") }
        if i < n, bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard digit(i) else { return false }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while digit(i) { i += 1 }
        }
        if i < n, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digit(i) else { return false }
            while digit(i) { i += 1 }
        }
        if i < n, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < n, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digit(i) else { return false }
            while digit(i) { i += 1 }
        }
        return i == n
    }
}
