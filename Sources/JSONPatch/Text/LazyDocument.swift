//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// A subtree of a document patched as text: untouched values stay ranges of the source text,
/// containers on a patched path are split one level at a time, and values the patch brings are
/// held as ``JSONValue``.
enum LazyNode: Sendable {
    /// A canonical JSON value in the source text.
    case raw(Range<Int>)
    case value(JSONValue)
    case object([LazyMember])
    case array([LazyNode])
    /// An array of the source text, not split, with elements appended after its own: what
    /// `add` at `/-` makes, so that appending to a long array costs nothing per element.
    case appended(Range<Int>, [LazyNode])
}

struct LazyMember: Sendable {
    var key: String
    var node: LazyNode
    /// For a member read from the source: where its key (the quote) and its value start there;
    /// -1 for others. While the node is still the source value that starts at `valueStart`, the
    /// source from `keyStart` to the value's end is the member's text.
    var keyStart = -1
    var valueStart = -1

    init(key: String, node: LazyNode) {
        self.key = key
        self.node = node
    }

    init(key: String, node: LazyNode, keyStart: Int, valueStart: Int) {
        self.key = key
        self.node = node
        self.keyStart = keyStart
        self.valueStart = valueStart
    }
}

/// The text a lazy document was read from, and the reading of it; shared by the document and
/// the closures that edit it.
struct LazySource: Sendable {
    let source: [UInt8]
    /// Whether the source has no insignificant white space, so raw ranges can be copied as they are.
    let compact: Bool
    /// Start and end offsets of every container in the source, in document order (from the
    /// scanner); empty when unknown.
    let containerBounds: [Int]

    /// The end of the container that starts at `start`, from the scanner's table.
    private func containerEnd(from start: Int) -> Int? {
        var low = 0
        var high = containerBounds.count / 2
        while low < high {
            let mid = (low + high) / 2
            let s = containerBounds[2 * mid]
            if s == start { return containerBounds[2 * mid + 1] }
            if s < start { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    private func skipWhitespace(_ i: inout Int) {
        while i < source.count {
            let b = source[i]
            guard b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return }
            i += 1
        }
    }

    /// The end of the (valid) value starting at `start`.
    private func valueEnd(from start: Int) -> Int {
        let s = source.span
        var i = start
        switch s[i] {
        case 0x22:
            return Self.stringEnd(s, from: i)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            if let end = containerEnd(from: start) { return end }
            var depth = 0
            while true {
                let b = s[i]
                if b == 0x22 {
                    i = Self.stringEnd(s, from: i)
                    continue
                }
                if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                    depth += 1
                } else if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") {
                    depth -= 1
                    if depth == 0 { return i + 1 }
                }
                i += 1
            }
        default:
            while i < s.count {
                let b = s[i]
                if b == UInt8(ascii: ",") || b == UInt8(ascii: "}") || b == UInt8(ascii: "]") || b == 0x20 || b == 0x0A
                    || b == 0x0D || b == 0x09
                {
                    break
                }
                i += 1
            }
            return i
        }
    }

    private static func stringEnd(_ s: Span<UInt8>, from quote: Int) -> Int {
        var i = quote + 1
        while true {
            let b = s[i]
            if b == 0x5C {
                i += 2
            } else if b == 0x22 {
                return i + 1
            } else {
                i += 1
            }
        }
    }

    func typeName(of node: LazyNode) -> String {
        switch node {
        case .value(let v): return v.typeName
        case .object: return "object"
        case .array, .appended: return "array"
        case .raw(let range):
            switch source[range.lowerBound] {
            case 0x22: return "string"
            case UInt8(ascii: "{"): return "object"
            case UInt8(ascii: "["): return "array"
            case UInt8(ascii: "t"), UInt8(ascii: "f"): return "boolean"
            case UInt8(ascii: "n"): return "null"
            default: return "number"
            }
        }
    }

    /// Splits a container one level (raw text, or a ``JSONValue`` container); other nodes are
    /// returned as they are.
    func expanded(_ node: LazyNode) -> LazyNode {
        switch node {
        case .raw(let range):
            let first = source[range.lowerBound]
            if first == UInt8(ascii: "{") { return .object(rawMembers(range)) }
            if first == UInt8(ascii: "[") { return .array(rawElements(range)) }
            return node
        case .value(.object(let object)):
            return .object(object.map { LazyMember(key: $0.key, node: .value($0.value)) })
        case .value(.array(let array)):
            return .array(array.map { .value($0) })
        case .appended(let range, let tail):
            return .array(rawElements(range) + tail)
        default:
            return node
        }
    }

    /// The member name whose quote is at `quote`, and the position after its closing quote.
    private func key(at quote: Int, end: Int) -> (String, Int) {
        // Most names have no escapes: their bytes are the string (valid UTF-8, as scanned).
        let s = source.span
        var k = quote + 1
        while k < end {
            let b = s[k]
            if b == 0x22 {
                guard let text = try? UTF8Span(validating: s.extracting((quote + 1)..<k)) else { break }
                return (String(copying: text), k + 1)
            }
            if b == 0x5C { break }
            k += 1
        }
        do {
            return try JSONParser.parseString(in: source, at: quote, end: end)
        } catch {
            preconditionFailure("scanned text failed to parse: \(error)")
        }
    }

    private func rawMembers(_ range: Range<Int>) -> [LazyMember] {
        var members: [LazyMember] = []
        members.reserveCapacity(16)
        var i = range.lowerBound + 1
        skipWhitespace(&i)
        if source[i] == UInt8(ascii: "}") { return members }
        while true {
            let keyStart = i
            let key: String
            (key, i) = self.key(at: i, end: range.upperBound)
            skipWhitespace(&i)
            i += 1  // ':'
            skipWhitespace(&i)
            let end = valueEnd(from: i)
            members.append(LazyMember(key: key, node: .raw(i..<end), keyStart: keyStart, valueStart: i))
            i = end
            skipWhitespace(&i)
            if source[i] == UInt8(ascii: "}") { return members }
            i += 1  // ','
            skipWhitespace(&i)
        }
    }

    private func rawElements(_ range: Range<Int>) -> [LazyNode] {
        var elements: [LazyNode] = []
        var i = range.lowerBound + 1
        skipWhitespace(&i)
        if source[i] == UInt8(ascii: "]") { return elements }
        while true {
            let end = valueEnd(from: i)
            elements.append(.raw(i..<end))
            i = end
            skipWhitespace(&i)
            if source[i] == UInt8(ascii: "]") { return elements }
            i += 1  // ','
            skipWhitespace(&i)
        }
    }

    func jsonValue(of node: LazyNode) -> JSONValue {
        switch node {
        case .value(let v):
            return v
        case .raw(let range):
            do {
                return try JSONParser.accepted
                    .parse(source, in: range)
            } catch {
                preconditionFailure("scanned text failed to parse: \(error)")
            }
        case .object(let members):
            var object = JSONObject(minimumCapacity: members.count)
            for m in members { object.appendUnique(key: m.key, value: jsonValue(of: m.node)) }
            return .object(object)
        case .array(let nodes):
            return .array(nodes.map { jsonValue(of: $0) })
        case .appended(let range, let tail):
            guard case .array(let head) = jsonValue(of: .raw(range)) else { return .null }
            return .array(head + tail.map { jsonValue(of: $0) })
        }
    }

    func write(_ node: LazyNode, to out: inout [UInt8]) {
        switch node {
        case .raw(let range):
            if compact {
                out.append(contentsOf: source[range])
            } else {
                writeCompacting(range, to: &out)
            }
        case .value(let value):
            JSONWriter.write(value, to: &out)
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // Members still as the source has them are copied with their keys, and a run of
            // them that is adjacent in the source in one piece.
            var run = 0..<0
            for (i, member) in members.enumerated() {
                if compact, case .raw(let value) = member.node, value.lowerBound == member.valueStart {
                    if !run.isEmpty && run.upperBound + 1 == member.keyStart {
                        run = run.lowerBound..<value.upperBound
                        continue
                    }
                    if !run.isEmpty { out.append(contentsOf: source[run]) }
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    run = member.keyStart..<value.upperBound
                    continue
                }
                if !run.isEmpty {
                    out.append(contentsOf: source[run])
                    run = 0..<0
                }
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                write(member.node, to: &out)
            }
            if !run.isEmpty { out.append(contentsOf: source[run]) }
            out.append(UInt8(ascii: "}"))
        case .array(let nodes):
            out.append(UInt8(ascii: "["))
            for (i, element) in nodes.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .appended(let range, let tail):
            // The source array without its closing bracket, then the new elements.
            let start = out.count
            write(.raw(range), to: &out)
            out.removeLast()
            if out.count - start > 1 { out.append(UInt8(ascii: ",")) }
            for (i, element) in tail.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }

    /// Copies valid JSON text without the white space between tokens.
    private func writeCompacting(_ range: Range<Int>, to out: inout [UInt8]) {
        var inString = false
        var escaped = false
        for i in range {
            let b = source[i]
            if inString {
                if escaped {
                    escaped = false
                } else if b == 0x5C {
                    escaped = true
                } else if b == 0x22 {
                    inString = false
                }
                out.append(b)
            } else if b == 0x22 {
                inString = true
                out.append(b)
            } else if !(b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09) {
                out.append(b)
            }
        }
    }
}

/// A document held as canonical JSON text (see ``JSONScanner``) that a patch edits in place and
/// that writes itself back as compact text, copying the untouched parts verbatim.
///
/// It follows ``JSONValue``'s semantics and error messages exactly, so that patching text this way
/// gives byte for byte what parsing, patching and serialising would.
struct LazyDocument: PatchTarget, Sendable {
    let text: LazySource
    var root: LazyNode

    init(source: [UInt8], compact: Bool, containerBounds: [Int], root: LazyNode) {
        self.text = LazySource(source: source, compact: compact, containerBounds: containerBounds)
        self.root = root
    }

    var source: [UInt8] { text.source }

    func expanded(_ node: LazyNode) -> LazyNode { text.expanded(node) }

    /// Appends the compact JSON text of the document.
    func write(to out: inout [UInt8]) {
        text.write(root, to: &out)
    }

    // MARK: PatchTarget

    static func node(_ value: JSONValue) -> LazyNode { .value(value) }

    func jsonValue(of node: LazyNode) -> JSONValue { text.jsonValue(of: node) }

    func node(at pointer: JSONPointer) throws(Failure) -> LazyNode {
        var current = root
        for (depth, token) in pointer.tokens.enumerated() {
            switch expanded(current) {
            case .object(let members):
                guard let member = members.first(where: { $0.key.isKey(token) }) else {
                    throw Failure(.pathNotFound, pointer.missingMember(token, at: depth))
                }
                current = member.node
            case .array(let nodes):
                current = nodes[try pointer.existingIndex(at: depth, count: nodes.count)]
            default:
                throw Failure(.invalidTarget, pointer.notAContainer(typeName: text.typeName(of: current), at: depth))
            }
        }
        return current
    }

    mutating func add(_ node: LazyNode, at pointer: JSONPointer) throws(Failure) {
        guard let last = pointer.tokens.last else {
            root = node
            return
        }
        let text = self.text
        try modifyParent(of: pointer, expandingParent: last != "-") { (container: inout LazyNode, typeName: String) throws(Failure) in
            if last == "-" {
                switch container {
                case .raw(let range) where text.source[range.lowerBound] == UInt8(ascii: "["):
                    container = .appended(range, [node])
                    return
                case .appended(let range, var tail):
                    container = .value(.null)
                    tail.append(node)
                    container = .appended(range, tail)
                    return
                default:
                    container = text.expanded(container)
                }
            }
            switch container {
            case .object(var members):
                container = .value(.null)
                if let i = members.firstIndex(where: { $0.key.isKey(last) }) {
                    members[i].node = node
                } else {
                    members.append(LazyMember(key: last, node: node))
                }
                container = .object(members)
            case .array(var nodes):
                let index = try pointer.lastIndex(in: nodes.count, allowEnd: true)
                container = .value(.null)
                nodes.insert(node, at: index)
                container = .array(nodes)
            default:
                throw Failure(.invalidTarget, pointer.notAContainer(typeName: typeName, at: pointer.tokens.count - 1))
            }
        }
    }

    mutating func remove(at pointer: JSONPointer) throws(Failure) -> LazyNode {
        guard let last = pointer.tokens.last else { throw Failure.removeRoot }
        return try modifyParent(of: pointer) { (container: inout LazyNode, typeName: String) throws(Failure) -> LazyNode in
            switch container {
            case .object(var members):
                guard let i = members.firstIndex(where: { $0.key.isKey(last) }) else { throw pointer.missingLastMember() }
                container = .value(.null)
                let removed = members.remove(at: i).node
                container = .object(members)
                return removed
            case .array(var nodes):
                let index = try pointer.lastIndex(in: nodes.count, allowEnd: false)
                container = .value(.null)
                let removed = nodes.remove(at: index)
                container = .array(nodes)
                return removed
            default:
                throw Failure(.invalidTarget, pointer.notAContainer(typeName: typeName, at: pointer.tokens.count - 1))
            }
        }
    }

    mutating func replace(at pointer: JSONPointer, with node: LazyNode) throws(Failure) {
        guard let last = pointer.tokens.last else {
            root = node
            return
        }
        try modifyParent(of: pointer) { (container: inout LazyNode, typeName: String) throws(Failure) in
            switch container {
            case .object(var members):
                guard let i = members.firstIndex(where: { $0.key.isKey(last) }) else { throw pointer.missingLastMember() }
                container = .value(.null)
                members[i].node = node
                container = .object(members)
            case .array(var nodes):
                let index = try pointer.lastIndex(in: nodes.count, allowEnd: false)
                container = .value(.null)
                nodes[index] = node
                container = .array(nodes)
            default:
                throw Failure(.invalidTarget, pointer.notAContainer(typeName: typeName, at: pointer.tokens.count - 1))
            }
        }
    }

    /// Splits the containers on the way to `pointer`'s parent and hands the parent to `body`,
    /// with its type name for error messages.
    /// - Parameter expandingParent: whether the parent container is split before `body` sees it
    ///   (appending leaves a source array whole).
    private mutating func modifyParent<R>(
        of pointer: JSONPointer,
        expandingParent: Bool = true,
        _ body: (inout LazyNode, String) throws(Failure) -> R
    ) throws(Failure) -> R {
        var node = root
        root = .value(.null)
        defer { root = node }
        return try modify(&node, pointer, depth: 0, expandingParent: expandingParent, body)
    }

    private func modify<R>(
        _ node: inout LazyNode,
        _ pointer: JSONPointer,
        depth: Int,
        expandingParent: Bool,
        _ body: (inout LazyNode, String) throws(Failure) -> R
    ) throws(Failure) -> R {
        let typeName = text.typeName(of: node)
        if depth == pointer.tokens.count - 1 {
            if expandingParent { node = expanded(node) }
            return try body(&node, typeName)
        }
        node = expanded(node)
        let token = pointer.tokens[depth]
        switch node {
        case .object(var members):
            guard let i = members.firstIndex(where: { $0.key.isKey(token) }) else {
                throw Failure(.pathNotFound, pointer.missingMember(token, at: depth))
            }
            node = .value(.null)
            defer { node = .object(members) }
            return try modify(&members[i].node, pointer, depth: depth + 1, expandingParent: expandingParent, body)
        case .array(var nodes):
            let index = try pointer.existingIndex(at: depth, count: nodes.count)
            node = .value(.null)
            defer { node = .array(nodes) }
            return try modify(&nodes[index], pointer, depth: depth + 1, expandingParent: expandingParent, body)
        default:
            throw Failure(.invalidTarget, pointer.notAContainer(typeName: typeName, at: depth))
        }
    }

}
