//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import CHiredis

/// Where one connection's reader puts the values it parses.
///
/// hiredis lets a reader build replies with functions of one's own (`redisReplyObjectFunctions`).
/// Its default ones allocate a `redisReply` per value and a copy of every string, which the
/// caller then copies again into Swift values; these append each value to a flat list instead
/// and its bytes to one buffer (``RedisReplies``). The object a function returns is only a
/// non-null token (the node's position plus one): hiredis keeps it as the parent of nested
/// values and hands it back, but never looks inside, and frees it only through `freeObject`,
/// which has nothing to free.
final class ReplyArena {
    // Only the connection's thread touches an arena, and never twice at once; unchecked, the
    // accesses skip the runtime's exclusivity bookkeeping, which was 4% of a drain's CPU: each
    // value hiredis parses appends here through a C callback.
    @exclusivity(unchecked) private(set) var nodes: [RedisReplies.Node] = []
    @exclusivity(unchecked) private(set) var bytes: [UInt8] = []
    /// The sizes of the last round trip's buffers, to reserve for the next one at once.
    private var lastNodeCount = 0
    private var lastByteCount = 0

    var nodeCount: Int { nodes.count }

    /// Makes the reader build its values here. The arena must outlive the reader: the
    /// connection owns both and frees the context first.
    func install(in reader: UnsafeMutablePointer<redisReader>) {
        reader.pointee.fn = Self.functions
        reader.pointee.privdata = Unmanaged.passUnretained(self).toOpaque()
    }

    /// Forgets the values read so far.
    func reset() {
        nodes.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
    }

    /// Hands the values over as ``RedisReplies`` and starts afresh, reserving what the last
    /// round trip needed.
    func take(roots: [Int]) -> RedisReplies {
        let replies = RedisReplies(nodes: nodes, bytes: bytes, roots: roots)
        lastNodeCount = nodes.count
        lastByteCount = bytes.count
        nodes = []
        bytes = []
        nodes.reserveCapacity(lastNodeCount + lastNodeCount / 4)
        bytes.reserveCapacity(lastByteCount + lastByteCount / 4)
        return replies
    }

    /// Sets the subtree ends of the reply that starts at node `root`, once it is complete.
    func close(_ root: Int) {
        _ = closeSubtree(root)
    }

    private func closeSubtree(_ index: Int) -> Int {
        var next = index + 1
        if nodes[index].kind == Kinds.array {
            for _ in 0..<nodes[index].count { next = closeSubtree(next) }
        }
        nodes[index].end = next
        return next
    }

    /// The message of the error reply at `index`, if it is one.
    func errorMessage(at index: Int) -> String? {
        let node = nodes[index]
        guard node.kind == Kinds.error else { return nil }
        let start = Int(node.value)
        return String(decoding: bytes[start..<(start + node.count)], as: UTF8.self)
    }

    /// Calls `body` with the message of every error value from node `root` to the last one read.
    func forEachError(from root: Int, _ body: (String) -> Void) {
        for index in root..<nodes.count where nodes[index].kind == Kinds.error {
            if let message = errorMessage(at: index) { body(message) }
        }
    }

    private func append(_ node: RedisReplies.Node) -> UnsafeMutableRawPointer? {
        nodes.append(node)
        return UnsafeMutableRawPointer(bitPattern: nodes.count)
    }

    /// Set when an error reply says the node is no longer the master (`READONLY`, `UNBLOCKED`
    /// after a role change): the connection must find the master again.
    var sawRoleChange = false

    fileprivate func string(kind: Int32, _ start: UnsafeMutablePointer<CChar>?, _ length: Int) -> UnsafeMutableRawPointer? {
        let offset = bytes.count
        if let start, length > 0 {
            bytes.append(contentsOf: UnsafeRawBufferPointer(start: start, count: length))
            if kind == Kinds.error, Self.isRoleChange(UnsafeRawBufferPointer(start: start, count: length)) { sawRoleChange = true }
        }
        return append(RedisReplies.Node(kind: kind, count: length, value: Int64(offset), end: 0))
    }

    fileprivate func array(count: Int) -> UnsafeMutableRawPointer? {
        append(RedisReplies.Node(kind: Kinds.array, count: count, value: 0, end: 0))
    }

    fileprivate func integer(_ value: Int64) -> UnsafeMutableRawPointer? {
        append(RedisReplies.Node(kind: Kinds.integer, count: 0, value: value, end: 0))
    }

    fileprivate func null() -> UnsafeMutableRawPointer? {
        append(RedisReplies.Node(kind: Int32(REDIS_REPLY_NIL), count: 0, value: 0, end: 0))
    }

    private static let roleChangeWords: [[UInt8]] = ["READONLY ", "UNBLOCKED "].map { Array($0.utf8) }

    private static func isRoleChange(_ message: UnsafeRawBufferPointer) -> Bool {
        roleChangeWords.contains { word in message.count >= word.count && message.prefix(word.count).elementsEqual(word) }
    }

    private static func arena(_ task: UnsafePointer<redisReadTask>?) -> ReplyArena {
        Unmanaged<ReplyArena>.fromOpaque(task!.pointee.privdata).takeUnretainedValue()
    }

    /// The functions, allocated once for the process and never freed (hiredis keeps a pointer).
    private nonisolated(unsafe) static let functions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
        let functions = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
        functions.initialize(
            to: redisReplyObjectFunctions(
                createString: { task, start, length in arena(task).string(kind: task!.pointee.type, start, length) },
                createArray: { task, count in arena(task).array(count: Int(count)) },
                createInteger: { task, value in arena(task).integer(Int64(value)) },
                createNil: { task in arena(task).null() },
                freeObject: { _ in }
            )
        )
        return functions
    }()
}
