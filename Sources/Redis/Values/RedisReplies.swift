//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import CHiredis

/// The replies of one round trip, as hiredis's reader hands them over: every value in one flat
/// list (depth first) and every string's bytes in one buffer.
///
/// A batch of stream entries is hundreds of strings; reading them this way costs two buffers per
/// round trip instead of an allocation per string, and callers take slices of the bytes they keep.
/// ``RedisReply`` values are built on demand, for code that prefers an enum to a view.
public final class RedisReplies: Sendable {
    struct Node: Sendable {
        /// hiredis's reply type (`REDIS_REPLY_STRING` ...).
        var kind: Int32
        /// A string's length, or an array's element count.
        var count: Int
        /// A string's offset in `bytes`, or an integer's value.
        var value: Int64
        /// The index just past this node's subtree.
        var end: Int
    }

    let nodes: [Node]
    let bytes: [UInt8]
    /// The node of each top-level reply.
    let roots: [Int]

    init(nodes: [Node], bytes: [UInt8], roots: [Int]) {
        self.nodes = nodes
        self.bytes = bytes
        self.roots = roots
    }

    /// Parses replies from RESP text with hiredis's reader, as a connection would: for code (and
    /// tests) that need replies without a server. Throws on malformed or incomplete text.
    public convenience init(parsing resp: [UInt8]) throws(RedisError) {
        let arena = ReplyArena()
        guard let reader = redisReaderCreateWithFunctions(nil) else {
            throw RedisError(code: .protocolError, message: "cannot allocate a hiredis reader")
        }
        defer { redisReaderFree(reader) }
        arena.install(in: reader)
        let fed = resp.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
        }
        guard fed == REDIS_OK else { throw RedisError(code: .protocolError, message: "cannot feed the reader") }
        var roots: [Int] = []
        while true {
            let root = arena.nodeCount
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
                throw RedisError(code: .protocolError, message: "malformed RESP")
            }
            guard raw != nil else { break }
            arena.close(root)
            roots.append(root)
        }
        let taken = arena.take(roots: roots)
        self.init(nodes: taken.nodes, bytes: taken.bytes, roots: taken.roots)
    }

    /// Replies gathered from several round trips (a cluster's nodes), copied into one in the
    /// order given.
    public convenience init(assembling values: [RedisValue]) {
        var nodes: [Node] = []
        var bytes: [UInt8] = []
        var roots: [Int] = []
        roots.reserveCapacity(values.count)
        for value in values {
            let source = value.replies
            let first = value.index
            let last = source.nodes[first].end
            let shift = nodes.count - first
            roots.append(nodes.count)
            for k in first..<last {
                var node = source.nodes[k]
                node.end += shift
                switch node.kind {
                case Kinds.string, Kinds.status, Kinds.error:
                    let start = Int(node.value)
                    node.value = Int64(bytes.count)
                    bytes.append(contentsOf: source.bytes[start..<(start + node.count)])
                default:
                    break
                }
                nodes.append(node)
            }
        }
        self.init(nodes: nodes, bytes: bytes, roots: roots)
    }

    /// The number of top-level replies (one per command sent).
    public var count: Int { roots.count }

    /// The reply to command `index`.
    public subscript(index: Int) -> RedisValue {
        RedisValue(replies: self, index: roots[index])
    }

    /// Every top-level reply as a ``RedisReply``.
    public var all: [RedisReply] {
        roots.map { RedisValue(replies: self, index: $0).reply }
    }
}

/// One value inside ``RedisReplies``: a view, cheap to copy, that reads the shared buffers.
public struct RedisValue: Sendable {
    let replies: RedisReplies
    let index: Int

    /// The kinds of RESP2 values.
    public enum Kind: Sendable, Equatable {
        case null, status, error, integer, bulk, array
    }

    private var node: RedisReplies.Node { replies.nodes[index] }

    public var kind: Kind {
        switch node.kind {
        case Kinds.string: return .bulk
        case Kinds.array: return .array
        case Kinds.integer: return .integer
        case Kinds.status: return .status
        case Kinds.error: return .error
        default: return .null
        }
    }

    public var isNull: Bool { kind == .null }

    /// The bytes of a bulk string, status or error.
    public var bytes: ArraySlice<UInt8>? {
        let node = self.node
        switch node.kind {
        case Kinds.string, Kinds.status, Kinds.error:
            let start = Int(node.value)
            return replies.bytes[start..<(start + node.count)]
        default:
            return nil
        }
    }

    /// A bulk string or status as text (invalid UTF-8 is repaired).
    public var string: String? {
        guard kind == .bulk || kind == .status, let bytes else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// An error reply's message.
    public var errorMessage: String? {
        guard kind == .error, let bytes else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// An integer, or a bulk string holding a decimal integer.
    public var int: Int64? {
        let node = self.node
        switch node.kind {
        case Kinds.integer: return node.value
        case Kinds.string: return bytes.flatMap { Int64(String(decoding: $0, as: UTF8.self)) }
        default: return nil
        }
    }

    /// An array's elements, in order (empty for anything else).
    public var elements: Elements {
        let node = self.node
        return Elements(replies: replies, first: index + 1, count: node.kind == Kinds.array ? node.count : 0)
    }

    /// The value as a ``RedisReply`` (copied out of the buffers).
    public var reply: RedisReply {
        switch kind {
        case .null: return .null
        case .status: return .status(string ?? "")
        case .error: return .error(errorMessage ?? "")
        case .integer: return .integer(node.value)
        case .bulk: return .bulk(Array(bytes ?? []))
        case .array: return .array(elements.map(\.reply))
        }
    }

    /// The elements of an array value; walking them skips each element's subtree.
    public struct Elements: Sequence, Sendable {
        let replies: RedisReplies
        let first: Int
        public let count: Int

        public var isEmpty: Bool { count == 0 }

        public func makeIterator() -> Iterator {
            Iterator(replies: replies, position: first, remaining: count)
        }

        /// The element at `position` (walks the ones before it).
        public subscript(position: Int) -> RedisValue {
            precondition(position >= 0 && position < count, "element \(position) of \(count)")
            var index = first
            for _ in 0..<position { index = replies.nodes[index].end }
            return RedisValue(replies: replies, index: index)
        }

        public struct Iterator: IteratorProtocol, Sendable {
            let replies: RedisReplies
            var position: Int
            var remaining: Int

            public mutating func next() -> RedisValue? {
                guard remaining > 0 else { return nil }
                remaining -= 1
                let value = RedisValue(replies: replies, index: position)
                position = replies.nodes[position].end
                return value
            }
        }
    }
}

/// hiredis's reply types (RESP2).
enum Kinds {
    static let string = Int32(REDIS_REPLY_STRING)
    static let array = Int32(REDIS_REPLY_ARRAY)
    static let integer = Int32(REDIS_REPLY_INTEGER)
    static let status = Int32(REDIS_REPLY_STATUS)
    static let error = Int32(REDIS_REPLY_ERROR)
}
