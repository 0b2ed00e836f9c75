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

    /// Containers this deep or less get their bounds recorded: the ones a patch's path usually
    /// splits. Deeper ones are found again by scanning when a patch reaches into them.
    static let recordedDepth = 3

    /// Stacks the scanner needs, kept between scans so that scanning many texts allocates them
    /// once. Each is used through a span of fixed size (no check for uniqueness or room per push);
    /// when one fills up, the scan starts again with twice the room.
    struct Scratch: Sendable {
        /// Per open container: the slot of its end offset in the bounds table (-1 when not
        /// recorded); for objects where its key fingerprints start in `keys` (-1 for arrays); and
        /// a mask of one bit per key fingerprint seen, so that most new keys need no comparison.
        var open = [Int](repeating: 0, count: 96)
        /// Fingerprints of the keys of every open object, innermost last.
        var keys = [UInt64](repeating: 0, count: 64)
        /// Room for this many offsets in the bounds table.
        var boundsRoom = 64

        init() {}
    }

    /// Checks `bytes[range]`. For each array and object, in document order, appends its start
    /// and end offsets to `containerBounds`, so that later reads can skip containers without
    /// scanning them again.
    static func scan(_ bytes: [UInt8], in range: Range<Int>, maxDepth: Int, containerBounds: inout [Int]) -> Verdict {
        var scratch = Scratch()
        // The span is exactly the range, so that each index check is also the bounds check.
        let result = scan(
            bytes.span.extracting(range),
            base: range.lowerBound,
            stopAtNewline: false,
            maxDepth: maxDepth,
            bounds: &containerBounds,
            scratch: &scratch
        )
        guard case .value(let end, let compact) = result, end == range.count else { return .needsParser }
        return .canonical(compact: compact)
    }

    /// What ``scanLine(_:from:maxDepth:containerBounds:scratch:)`` found.
    enum LineVerdict: Equatable {
        /// A canonical value that ends the line: its line ends at `end` (a newline, or the end
        /// of the bytes).
        case canonical(end: Int, compact: Bool)
        /// The line needs the parser; no newline lies before `from`, so the line's end can be
        /// looked for from there.
        case needsParser(from: Int)
    }

    /// Checks the JSON Lines line that starts at `start` without looking for its end first:
    /// the scan stops at the first newline outside a string (a newline inside one is invalid).
    static func scanLine(
        _ bytes: [UInt8],
        from start: Int,
        maxDepth: Int,
        containerBounds: inout [Int],
        scratch: inout Scratch
    ) -> LineVerdict {
        let s = bytes.span.extracting(start..<bytes.count)
        let result = scan(s, base: start, stopAtNewline: true, maxDepth: maxDepth, bounds: &containerBounds, scratch: &scratch)
        switch result {
        case .value(let end, let compact):
            // After the value only white space may follow, up to the newline.
            if end == s.count || s[end] == 0x0A { return .canonical(end: start + end, compact: compact) }
            return .needsParser(from: start + end)
        case .failed(let at):
            return .needsParser(from: start + at)
        }
    }

    private enum Result {
        /// One valid, canonical value, and the white space after it, ends at `end`.
        case value(end: Int, compact: Bool)
        /// Not valid or not canonical; no newline lies before `at`.
        case failed(at: Int)
    }

    @inline(__always)
    private static func isSpace(_ b: UInt8, stopAtNewline: Bool) -> Bool {
        b <= 0x20 && (b == 0x20 || b == 0x09 || b == 0x0D || (b == 0x0A && !stopAtNewline))
    }

    /// Scans a value string whose quote is at `i`; moves `i` past the closing quote.
    @inline(__always)
    private static func scanString(_ s: Span<UInt8>, _ i: inout Int) -> Bool {
        var k = i + 1
        let start = k
        var high: UInt8 = 0
        while k < s.count {
            let b = s[k]
            // Most bytes are plain: one test for them.
            if b >= 0x20, b != 0x22, b != 0x5C {
                high |= b
                k += 1
                continue
            }
            if b == 0x22 {
                i = k + 1
                return high < 0x80 || (try? UTF8Span(validating: s.extracting(start..<k))) != nil
            }
            guard b == 0x5C, k + 1 < s.count, isCanonicalEscape(s[k + 1]) else { return false }
            k += 2
        }
        return false
    }

    /// Scans a key string whose quote is at `i`, moves `i` past the closing quote and returns a
    /// fingerprint of its raw bytes (canonical escapes are unique, so equal keys have equal raw
    /// bytes). A rotate-and-xor fingerprint is cheap; its rare collisions only send the text to
    /// the parser.
    @inline(__always)
    private static func scanKey(_ s: Span<UInt8>, _ i: inout Int) -> UInt64? {
        var k = i + 1
        let start = k
        var hash: UInt64 = 0
        var high: UInt8 = 0
        while k < s.count {
            let b = s[k]
            if b >= 0x20, b != 0x22, b != 0x5C {
                high |= b
                hash = (hash &<< 7 | hash &>> 57) ^ UInt64(b)
                k += 1
                continue
            }
            if b == 0x22 {
                if high >= 0x80, (try? UTF8Span(validating: s.extracting(start..<k))) == nil { return nil }
                i = k + 1
                return hash ^ UInt64(truncatingIfNeeded: k - start) &<< 56
            }
            guard b == 0x5C, k + 1 < s.count, isCanonicalEscape(s[k + 1]) else { return nil }
            hash = (hash &<< 7 | hash &>> 57) ^ UInt64(b)
            hash = (hash &<< 7 | hash &>> 57) ^ UInt64(s[k + 1])
            k += 2
        }
        return nil
    }

    @inline(__always)
    private static func scanDigits(_ s: Span<UInt8>, _ i: inout Int) {
        while i < s.count, s[i] &- UInt8(ascii: "0") <= 9 { i += 1 }
    }

    private static func scanNumber(_ s: Span<UInt8>, _ i: inout Int) -> Bool {
        if s[i] == UInt8(ascii: "-") { i += 1 }
        guard i < s.count else { return false }
        if s[i] == UInt8(ascii: "0") {
            i += 1
        } else if s[i] &- UInt8(ascii: "1") <= 8 {
            i += 1
            scanDigits(s, &i)
        } else {
            return false
        }
        if i < s.count, s[i] == UInt8(ascii: ".") {
            i += 1
            let first = i
            scanDigits(s, &i)
            guard i > first else { return false }
        }
        if i < s.count, s[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < s.count, s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") { i += 1 }
            let first = i
            scanDigits(s, &i)
            guard i > first else { return false }
        }
        // A digit right after `0` ("01") is an error for the parser.
        return !(i < s.count && s[i] &- UInt8(ascii: "0") <= 9)
    }

    private static func scanLiteral(_ s: Span<UInt8>, _ i: inout Int, _ literal: StaticString) -> Bool {
        literal.withUTF8Buffer { expected in
            for e in expected {
                guard i < s.count, s[i] == e else { return false }
                i += 1
            }
            return true
        }
    }

    /// Whether `key` differs from the fingerprints in `keys[base..<top]` (a collision counts
    /// as a repeat, which only sends the text to the parser).
    private static func isNewKey(_ key: UInt64, _ keys: borrowing MutableSpan<UInt64>, from base: Int, to top: Int) -> Bool {
        for k in base..<top where keys[k] == key { return false }
        return true
    }

    /// The bit of a key's fingerprint in its object's mask.
    @inline(__always)
    private static func maskBit(_ key: UInt64) -> Int {
        1 &<< Int(truncatingIfNeeded: (key ^ key &>> 56 ^ key &>> 29) & 63)
    }

    /// Scans one value at the start of `s` and the white space after it. Indices count from
    /// the start of `s`; `base` turns them into offsets of the whole buffer for the bounds table,
    /// which is replaced.
    private static func scan(
        _ s: Span<UInt8>,
        base: Int,
        stopAtNewline: Bool,
        maxDepth: Int,
        bounds: inout [Int],
        scratch: inout Scratch
    ) -> Result {
        while true {
            if bounds.count != scratch.boundsRoom {
                bounds.removeAll(keepingCapacity: true)
                bounds.append(contentsOf: repeatElement(0, count: scratch.boundsRoom))
            }
            var used = 0
            let scanned = scan(
                s,
                base: base,
                stopAtNewline: stopAtNewline,
                maxDepth: maxDepth,
                bounds: &bounds,
                boundsUsed: &used,
                open: &scratch.open,
                keys: &scratch.keys
            )
            guard let result = scanned else {
                // A stack ran out of room: grow them all (rare), and scan again.
                scratch.boundsRoom *= 2
                scratch.open.append(contentsOf: repeatElement(0, count: scratch.open.count))
                scratch.keys.append(contentsOf: repeatElement(0, count: scratch.keys.count))
                continue
            }
            bounds.removeSubrange(used...)
            return result
        }
    }

    /// One try at ``scan(_:base:stopAtNewline:maxDepth:bounds:scratch:)``; `nil` when a stack
    /// is full.
    private static func scan(
        _ s: Span<UInt8>,
        base: Int,
        stopAtNewline: Bool,
        maxDepth: Int,
        bounds boundsArray: inout [Int],
        boundsUsed: inout Int,
        open openArray: inout [Int],
        keys keysArray: inout [UInt64]
    ) -> Result? {
        var bounds = boundsArray.mutableSpan
        var open = openArray.mutableSpan
        var keys = keysArray.mutableSpan
        var boundsTop = 0
        var openTop = 0
        var keyTop = 0
        defer { boundsUsed = boundsTop }
        var i = 0
        var compact = true
        var depth = 0
        // Each turn reads one value, then closes the containers that end after it.
        while true {
            var tokenStart = i
            while i < s.count, isSpace(s[i], stopAtNewline: stopAtNewline) { i += 1 }
            if i != tokenStart {
                compact = false
                tokenStart = i
            }
            guard i < s.count else { return .failed(at: tokenStart) }
            let b = s[i]
            if b == 0x22 {
                guard scanString(s, &i) else { return .failed(at: tokenStart) }
            } else if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                guard depth < maxDepth else { return .failed(at: tokenStart) }
                depth += 1
                var slot = -1
                if depth <= recordedDepth {
                    guard boundsTop + 2 <= bounds.count else { return nil }
                    bounds[boundsTop] = base + i
                    slot = boundsTop + 1
                    boundsTop += 2
                }
                i += 1
                let afterBracket = i
                while i < s.count, isSpace(s[i], stopAtNewline: stopAtNewline) { i += 1 }
                if i != afterBracket { compact = false }
                guard i < s.count else { return .failed(at: i) }
                let c = s[i]
                if b == UInt8(ascii: "{") {
                    if c != UInt8(ascii: "}") {
                        guard openTop + 3 <= open.count, keyTop < keys.count else { return nil }
                        // The first member's name.
                        let nameStart = i
                        guard c == 0x22, let key = scanKey(s, &i) else { return .failed(at: nameStart) }
                        open[openTop] = slot
                        open[openTop + 1] = keyTop
                        open[openTop + 2] = maskBit(key)
                        openTop += 3
                        keys[keyTop] = key
                        keyTop += 1
                        if i < s.count, s[i] == UInt8(ascii: ":") {
                            i += 1
                            continue
                        }
                        let afterName = i
                        while i < s.count, isSpace(s[i], stopAtNewline: stopAtNewline) { i += 1 }
                        if i != afterName { compact = false }
                        guard i < s.count, s[i] == UInt8(ascii: ":") else { return .failed(at: i) }
                        i += 1
                        continue
                    }
                } else if c != UInt8(ascii: "]") {
                    guard openTop + 3 <= open.count else { return nil }
                    open[openTop] = slot
                    open[openTop + 1] = -1
                    openTop += 3
                    continue
                }
                i += 1
                depth -= 1
                if slot >= 0 { bounds[slot] = base + i }
            } else if b == UInt8(ascii: "-") || b &- UInt8(ascii: "0") <= 9 {
                guard scanNumber(s, &i) else { return .failed(at: tokenStart) }
            } else if b == UInt8(ascii: "t") {
                guard scanLiteral(s, &i, "true") else { return .failed(at: tokenStart) }
            } else if b == UInt8(ascii: "f") {
                guard scanLiteral(s, &i, "false") else { return .failed(at: tokenStart) }
            } else if b == UInt8(ascii: "n") {
                guard scanLiteral(s, &i, "null") else { return .failed(at: tokenStart) }
            } else {
                return .failed(at: tokenStart)
            }
            // After a value: a comma continues the innermost container, a bracket closes it.
            while true {
                let afterValue = i
                while i < s.count, isSpace(s[i], stopAtNewline: stopAtNewline) { i += 1 }
                if i != afterValue { compact = false }
                guard openTop > 0 else { return .value(end: i, compact: compact) }
                let keyBase = open[openTop - 2]
                guard i < s.count else { return .failed(at: i) }
                let c = s[i]
                if c == UInt8(ascii: ",") {
                    i += 1
                    if keyBase >= 0 {
                        let afterComma = i
                        while i < s.count, isSpace(s[i], stopAtNewline: stopAtNewline) { i += 1 }
                        if i != afterComma { compact = false }
                        let nameStart = i
                        guard i < s.count, s[i] == 0x22, let key = scanKey(s, &i) else { return .failed(at: nameStart) }
                        guard keyTop < keys.count else { return nil }
                        // A key whose bit is new in the object's mask is a new key.
                        let bit = maskBit(key)
                        let mask = open[openTop - 1]
                        if mask & bit != 0 {
                            guard isNewKey(key, keys, from: keyBase, to: keyTop) else { return .failed(at: nameStart) }
                        }
                        open[openTop - 1] = mask | bit
                        keys[keyTop] = key
                        keyTop += 1
                        if i < s.count, s[i] == UInt8(ascii: ":") {
                            i += 1
                            break
                        }
                        let afterName = i
                        while i < s.count, isSpace(s[i], stopAtNewline: stopAtNewline) { i += 1 }
                        if i != afterName { compact = false }
                        guard i < s.count, s[i] == UInt8(ascii: ":") else { return .failed(at: i) }
                        i += 1
                    }
                    break
                }
                if keyBase >= 0 {
                    guard c == UInt8(ascii: "}") else { return .failed(at: i) }
                    keyTop = keyBase
                } else {
                    guard c == UInt8(ascii: "]") else { return .failed(at: i) }
                }
                i += 1
                depth -= 1
                openTop -= 3
                let slot = open[openTop]
                if slot >= 0 { bounds[slot] = base + i }
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
