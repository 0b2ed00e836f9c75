//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Checks JSON text without building it, to decide whether the text can be patched as text.
///
/// "Canonical" text is valid JSON that ``JSONParser`` accepts and that ``JSONWriter`` would write
/// back byte for byte, apart from insignificant white space: no `\u` or `\/` escapes (the writer
/// writes those characters themselves) and no object with a repeated key (the parser merges them).
/// Anything else, invalid text included, is left to the parser, which gives the exact result or
/// error. So the scanner may be conservative, but it must never call text canonical that the
/// parser would refuse or rewrite.
enum JSONScanner {
    enum Verdict: Equatable {
        /// Valid and canonical; `compact` when it holds no insignificant white space.
        case canonical(compact: Bool)
        /// Invalid, or valid but not canonical: build it with the parser.
        case needsParser
    }

    /// Checks `bytes[range]`. For each array and object, in document order, appends its start
    /// and end offsets to `containerBounds`, so that later reads can skip containers without
    /// scanning them again.
    static func scan(_ bytes: [UInt8], in range: Range<Int>, maxDepth: Int, containerBounds: inout [Int]) -> Verdict {
        var state = State(end: range.upperBound, position: range.lowerBound)
        let ok = state.run(bytes.span, maxDepth: maxDepth, bounds: &containerBounds)
        return ok ? .canonical(compact: state.compact) : .needsParser
    }

    private struct State {
        let end: Int
        var i: Int
        var compact = true
        /// Per open container: the slot of its end offset in the bounds table, and for objects
        /// where its key fingerprints start in `keys` (-1 for arrays).
        var open: [Int] = []
        /// Fingerprints of the keys of every open object, innermost last.
        var keys: [UInt64] = []

        init(end: Int, position: Int) {
            self.end = end
            self.i = position
        }

        @inline(__always)
        mutating func skipWhitespace(_ s: Span<UInt8>) {
            while i < end {
                let b = s[i]
                guard b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return }
                compact = false
                i += 1
            }
        }

        /// Scans a value string whose quote is at `i`.
        @inline(__always)
        mutating func scanString(_ s: Span<UInt8>) -> Bool {
            var k = i + 1
            let start = k
            var high: UInt8 = 0
            while k < end {
                let b = s[k]
                if b == 0x22 {
                    i = k + 1
                    return high < 0x80 || (try? UTF8Span(validating: s.extracting(start..<k))) != nil
                }
                if b == 0x5C {
                    guard k + 1 < end, JSONScanner.isCanonicalEscape(s[k + 1]) else { return false }
                    k += 2
                    continue
                }
                if b < 0x20 { return false }
                high |= b
                k += 1
            }
            return false
        }

        /// Scans a key string whose quote is at `i` and records a fingerprint of its raw bytes
        /// (canonical escapes are unique, so equal keys have equal raw bytes). A rotate-and-xor
        /// fingerprint is cheap; its rare collisions only send the text to the parser.
        @inline(__always)
        mutating func scanKey(_ s: Span<UInt8>) -> Bool {
            var k = i + 1
            let start = k
            var hash: UInt64 = 0
            var high: UInt8 = 0
            while k < end {
                let b = s[k]
                if b == 0x22 {
                    if high >= 0x80, (try? UTF8Span(validating: s.extracting(start..<k))) == nil { return false }
                    i = k + 1
                    keys.append(hash ^ UInt64(truncatingIfNeeded: k - start) &<< 56)
                    return true
                }
                if b < 0x20 { return false }
                if b == 0x5C {
                    guard k + 1 < end, JSONScanner.isCanonicalEscape(s[k + 1]) else { return false }
                    hash = (hash &<< 7 | hash &>> 57) ^ UInt64(b)
                    k += 1
                }
                high |= s[k]
                hash = (hash &<< 7 | hash &>> 57) ^ UInt64(s[k])
                k += 1
            }
            return false
        }

        /// Scans `"key" :` with the white space around the colon.
        @inline(__always)
        mutating func scanMemberName(_ s: Span<UInt8>) -> Bool {
            guard i < end, s[i] == 0x22, scanKey(s) else { return false }
            skipWhitespace(s)
            guard i < end, s[i] == UInt8(ascii: ":") else { return false }
            i += 1
            return true
        }

        mutating func scanNumber(_ s: Span<UInt8>) -> Bool {
            if s[i] == UInt8(ascii: "-") { i += 1 }
            guard i < end else { return false }
            if s[i] == UInt8(ascii: "0") {
                i += 1
            } else if s[i] &- UInt8(ascii: "1") <= 8 {
                i += 1
                while i < end, s[i] &- UInt8(ascii: "0") <= 9 { i += 1 }
            } else {
                return false
            }
            if i < end, s[i] == UInt8(ascii: ".") {
                i += 1
                let first = i
                while i < end, s[i] &- UInt8(ascii: "0") <= 9 { i += 1 }
                guard i > first else { return false }
            }
            if i < end, s[i] | 0x20 == UInt8(ascii: "e") {
                i += 1
                if i < end, s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") { i += 1 }
                let first = i
                while i < end, s[i] &- UInt8(ascii: "0") <= 9 { i += 1 }
                guard i > first else { return false }
            }
            // A digit right after `0` ("01") is an error for the parser.
            return !(i < end && s[i] &- UInt8(ascii: "0") <= 9)
        }

        mutating func scanLiteral(_ s: Span<UInt8>, _ literal: String) -> Bool {
            for expected in literal.utf8 {
                guard i < end, s[i] == expected else { return false }
                i += 1
            }
            return true
        }

        /// Whether the keys of the innermost object are distinct by fingerprint (a collision
        /// counts as a repeat, which only sends the text to the parser).
        func keysAreDistinct(from base: Int) -> Bool {
            let n = keys.count - base
            if n < 2 { return true }
            if n <= 16 {
                for a in (base + 1)..<keys.count {
                    let key = keys[a]
                    for b in base..<a where keys[b] == key { return false }
                }
                return true
            }
            let sorted = keys[base...].sorted()
            for k in 1..<sorted.count where sorted[k] == sorted[k - 1] { return false }
            return true
        }

        mutating func run(_ s: Span<UInt8>, maxDepth: Int, bounds: inout [Int]) -> Bool {
            // Each turn reads one value, then closes the containers that end after it.
            while true {
                skipWhitespace(s)
                guard i < end else { return false }
                let b = s[i]
                if b == 0x22 {
                    guard scanString(s) else { return false }
                } else if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                    guard open.count / 2 < maxDepth else { return false }
                    bounds.append(i)
                    bounds.append(0)
                    i += 1
                    skipWhitespace(s)
                    guard i < end else { return false }
                    if b == UInt8(ascii: "{") {
                        if s[i] != UInt8(ascii: "}") {
                            open.append(bounds.count - 1)
                            open.append(keys.count)
                            guard scanMemberName(s) else { return false }
                            continue
                        }
                    } else if s[i] != UInt8(ascii: "]") {
                        open.append(bounds.count - 1)
                        open.append(-1)
                        continue
                    }
                    i += 1
                    bounds[bounds.count - 1] = i
                } else if b == UInt8(ascii: "-") || b &- UInt8(ascii: "0") <= 9 {
                    guard scanNumber(s) else { return false }
                } else if b == UInt8(ascii: "t") {
                    guard scanLiteral(s, "true") else { return false }
                } else if b == UInt8(ascii: "f") {
                    guard scanLiteral(s, "false") else { return false }
                } else if b == UInt8(ascii: "n") {
                    guard scanLiteral(s, "null") else { return false }
                } else {
                    return false
                }
                // After a value: a comma continues the innermost container, a bracket closes it.
                while true {
                    skipWhitespace(s)
                    guard let keyBase = open.last else { return i == end }
                    guard i < end else { return false }
                    let c = s[i]
                    i += 1
                    if c == UInt8(ascii: ",") {
                        if keyBase >= 0 {
                            skipWhitespace(s)
                            guard scanMemberName(s) else { return false }
                        }
                        break
                    }
                    if keyBase >= 0 {
                        guard c == UInt8(ascii: "}"), keysAreDistinct(from: keyBase) else { return false }
                        keys.removeLast(keys.count - keyBase)
                    } else {
                        guard c == UInt8(ascii: "]") else { return false }
                    }
                    open.removeLast()
                    bounds[open.removeLast()] = i
                }
            }
        }
    }

    /// The escapes that ``JSONWriter`` writes back the same way.
    @inline(__always)
    static func isCanonicalEscape(_ b: UInt8) -> Bool {
        switch b {
        case 0x22, 0x5C, UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"): return true
        default: return false
        }
    }
}
