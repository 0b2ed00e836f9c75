//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Applies JSON Patches to JSON text and writes compact JSON text.
///
/// The result is byte for byte what parsing the document, applying the patch to the
/// ``JSONValue`` and serialising it would give, errors included. It is faster on large documents
/// because, when the text is canonical (see ``JSONScanner``), only the containers on the patch's
/// paths are built and everything else is copied from the input.
public struct JSONTextPatcher: Sendable {
    public var parser: JSONParser

    public init(parser: JSONParser = JSONParser()) {
        self.parser = parser
    }

    /// Why patching text failed.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        /// The document is not acceptable JSON.
        case invalidDocument(JSONParseError)
        /// The patch failed; nothing was written.
        case patchFailed(JSONPatchError)

        public var description: String {
            switch self {
            case .invalidDocument(let error): return "the document is not valid JSON: \(error)"
            case .patchFailed(let error): return error.description
            }
        }
    }

    /// Patches the document `bytes[range]` and appends the compact result to `out`; on failure
    /// `out` is left as it was.
    public func apply(
        _ patch: JSONPatch,
        to bytes: [UInt8],
        in range: Range<Int>,
        appendingTo out: inout [UInt8]
    )
        throws(Failure)
    {
        var bounds: [Int] = []
        bounds.reserveCapacity(range.count / 16)
        if range.count <= parser.limits.maxBytes,
            case .canonical(let compact) = JSONScanner.scan(bytes, in: range, maxDepth: parser.limits.maxDepth, containerBounds: &bounds)
        {
            var document = LazyDocument(source: bytes, compact: compact, containerBounds: bounds, root: .raw(trimmed(bytes, range)))
            do {
                try patch.applyInPlace(&document)
            } catch {
                throw .patchFailed(error)
            }
            document.write(to: &out)
            return
        }
        let document: JSONValue
        do {
            document = try parser.parse(bytes, in: range)
        } catch {
            throw .invalidDocument(error)
        }
        do {
            try patch.applied(to: document).write(to: &out)
        } catch {
            throw .patchFailed(error)
        }
    }

    /// Handles one JSON Lines request `{"doc":...,"patch":[...]}` held in `bytes[range]`:
    /// appends `{"result":...}` or `{"error":"..."}`, then a newline.
    public func processLine(_ bytes: [UInt8], in range: Range<Int>, appendingTo out: inout [UInt8]) {
        var bounds: [Int] = []
        bounds.reserveCapacity(range.count / 16)
        if range.count <= parser.limits.maxBytes,
            case .canonical(let compact) = JSONScanner.scan(bytes, in: range, maxDepth: parser.limits.maxDepth, containerBounds: &bounds)
        {
            writeLine(to: &out) { (out: inout [UInt8]) throws(LineError) in
                try processCanonicalLine(bytes, in: trimmed(bytes, range), compact: compact, bounds: bounds, appendingTo: &out)
            }
        } else {
            writeLine(to: &out) { (out: inout [UInt8]) throws(LineError) in
                try processParsedLine(bytes, in: range, appendingTo: &out)
            }
        }
    }

    /// Runs `body`, which appends `{"result":...`, and closes the line; when `body` throws, `out`
    /// gets the error line instead.
    func writeLine(to out: inout [UInt8], _ body: (inout [UInt8]) throws(LineError) -> Void) {
        let start = out.count
        do {
            try body(&out)
            out.append(contentsOf: "}\n".utf8)
        } catch {
            out.removeSubrange(start...)
            out.append(contentsOf: #"{"error":"#.utf8)
            JSONWriter.writeString(error.message, to: &out)
            out.append(contentsOf: "}\n".utf8)
        }
    }

    struct LineError: Error {
        let message: String
    }

    private static let notAnObject = LineError(message: "a line must be an object {\"doc\":...,\"patch\":[...]}")
    private static let noPatch = LineError(message: "the line has no \"patch\" member")
    private static let noDoc = LineError(message: "the line has no \"doc\" member")

    /// A line whose text ``JSONScanner`` found canonical (`range` without surrounding white space).
    func processCanonicalLine(
        _ bytes: [UInt8],
        in range: Range<Int>,
        compact: Bool,
        bounds: [Int],
        appendingTo out: inout [UInt8]
    ) throws(LineError) {
        let line = LazyDocument(source: bytes, compact: compact, containerBounds: bounds, root: .raw(range))
        guard case .object(let members) = line.expanded(line.root) else { throw Self.notAnObject }
        guard let patchNode = members.first(where: { $0.key == "patch" })?.node else { throw Self.noPatch }
        guard let docNode = members.first(where: { $0.key == "doc" })?.node else { throw Self.noDoc }
        var document = LazyDocument(source: bytes, compact: compact, containerBounds: bounds, root: docNode)
        do {
            let patch: JSONPatch
            // A plain patch is read straight into operations; any other is built as a value and
            // decoded, which also words its errors.
            if case .raw(let patchRange) = patchNode, let operations = JSONParser.accepted.patchOperations(bytes, in: patchRange) {
                patch = JSONPatch(operations: operations)
            } else {
                patch = try JSONPatch(line.jsonValue(of: patchNode))
            }
            try patch.applyInPlace(&document)
        } catch {
            throw LineError(message: error.description)
        }
        out.append(contentsOf: #"{"result":"#.utf8)
        document.write(to: &out)
    }

    /// Any line, parsed into a ``JSONValue`` first: text that is not canonical, and invalid text.
    func processParsedLine(_ bytes: [UInt8], in range: Range<Int>, appendingTo out: inout [UInt8]) throws(LineError) {
        let line: JSONValue
        do {
            line = try parser.parse(bytes, in: range)
        } catch {
            throw LineError(message: "the line is not valid JSON: \(error)")
        }
        guard case .object(var object) = consume line else { throw Self.notAnObject }
        guard let patchValue = object.removeValue(forKey: "patch") else { throw Self.noPatch }
        guard let document = object.removeValue(forKey: "doc") else { throw Self.noDoc }
        do {
            let result = try JSONPatch(patchValue).applied(to: document)
            out.append(contentsOf: #"{"result":"#.utf8)
            result.write(to: &out)
        } catch {
            throw LineError(message: error.description)
        }
    }

    /// The range without leading and trailing white space.
    func trimmed(_ bytes: [UInt8], _ range: Range<Int>) -> Range<Int> {
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper, isSpace(bytes[lower]) { lower += 1 }
        while upper > lower, isSpace(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }
}
