//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import CHiredis

#if canImport(Glibc)
import Glibc
#endif

/// One blocking hiredis connection: the only owner of its `redisContext`.
///
/// Every call blocks the calling thread, so it must never run on Swift's cooperative pool; use it
/// through ``RedisClient``, which gives each connection a thread of its own. A hiredis context is
/// unusable after any I/O error: the connection then reports ``isBroken`` and is replaced, never
/// reconnected in place (`redisReconnect` would lose the timeouts, `AUTH` and `SELECT`).
public final class RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>
    public let configuration: RedisConfiguration
    /// Set after an I/O or protocol error; the connection must then be dropped.
    public private(set) var isBroken = false

    /// Connects, applies the timeouts, and sends `AUTH` and `SELECT` as configured.
    public init(configuration: RedisConfiguration) throws(RedisError) {
        self.configuration = configuration
        let timeout = Self.timeval(configuration.connectTimeout)
        let connected: UnsafeMutablePointer<redisContext>?
        switch configuration.endpoint {
        case .tcp(let host, let port):
            connected = redisConnectWithTimeout(host, Int32(port), timeout)
        case .unix(let path):
            connected = redisConnectUnixWithTimeout(path, timeout)
        }
        guard let connected else {
            throw RedisError(code: .connectionFailed, message: "cannot allocate a hiredis context")
        }
        guard connected.pointee.err == 0 else {
            let text = Self.errorText(connected)
            redisFree(connected)
            let code: RedisError.Code = text.lowercased().contains("timed out") ? .timedOut : .connectionFailed
            throw RedisError(code: code, message: "cannot connect to \(configuration): \(text)")
        }
        context = connected
        _ = redisSetTimeout(context, Self.timeval(configuration.commandTimeout))
        // Keep the reply buffer between replies instead of freeing it past 16 KiB: a busy
        // connection would otherwise map and fault in a new one for every large reply.
        context.pointee.reader.pointee.maxbuf = 0
        if case .tcp = configuration.endpoint { _ = redisEnableKeepAlive(context) }

        var setup: [RedisCommand] = []
        if let password = configuration.password {
            setup.append(configuration.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password))
        }
        if configuration.database != 0 { setup.append(RedisCommand("SELECT", configuration.database)) }
        if !setup.isEmpty {
            for reply in try execute(setup) {
                if case .error(let message) = reply {
                    throw RedisError(code: .connectionFailed, message: "\(configuration) refused the connection set-up: \(message)")
                }
            }
        }
    }

    deinit {
        redisFree(context)
    }

    /// Changes the socket timeout that applies to every command from now on.
    public func setCommandTimeout(_ timeout: Duration) {
        _ = redisSetTimeout(context, Self.timeval(timeout))
    }

    /// Sends all commands before reading any reply (one round trip), then returns one reply per
    /// command. A server error answers its own command as ``RedisReply/error(_:)``; a connection
    /// failure throws and breaks the connection.
    public func execute(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        try send(commands)
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands { replies.append(try readReply()) }
        return replies
    }

    /// Sends a pipeline in one round trip and returns one reply per command.
    public func execute(_ pipeline: RedisPipeline) throws(RedisError) -> [RedisReply] {
        try send(pipeline)
        var replies: [RedisReply] = []
        replies.reserveCapacity(pipeline.count)
        for _ in 0..<pipeline.count { replies.append(try readReply()) }
        return replies
    }

    /// Like ``execute(_:)`` for commands whose answers only matter when they fail: the replies are
    /// not copied into Swift values; the server's error messages are returned, with the
    /// positions of the commands they answer.
    public func executeForErrors(_ pipeline: RedisPipeline) throws(RedisError) -> [(index: Int, message: String)] {
        try send(pipeline)
        var errors: [(index: Int, message: String)] = []
        for index in 0..<pipeline.count {
            guard !isBroken else { throw RedisError(code: .connectionLost, message: "the connection is broken") }
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw failure() }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            if reply.pointee.type == REDIS_REPLY_ERROR {
                errors.append((index, String(decoding: Self.bytes(reply.pointee.str, reply.pointee.len), as: UTF8.self)))
            }
            freeReplyObject(raw)
        }
        return errors
    }

    /// Queues commands in hiredis's output buffer; they are written by the next read (or `flush`).
    public func send(_ commands: [RedisCommand]) throws(RedisError) {
        for command in commands { try send(command.pipeline) }
    }

    /// Queues a pipeline's commands in hiredis's output buffer.
    public func send(_ pipeline: RedisPipeline) throws(RedisError) {
        guard !isBroken else { throw RedisError(code: .connectionLost, message: "the connection is broken") }
        let lengths = pipeline.lengths
        let counts = pipeline.argumentCounts
        let maxArguments = counts.max() ?? 0
        let failed = pipeline.buffer.withUnsafeBytes { bytes -> Bool in
            // hiredis copies each command into its output buffer; the pointers only need to live
            // for the call. An empty buffer has no base address: empty arguments then point at a
            // one-byte stand-in.
            let empty: StaticString = ""
            let fallback = UnsafeRawPointer(empty.utf8Start).assumingMemoryBound(to: CChar.self)
            return withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: max(1, maxArguments)) { argv in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    var argument = 0
                    var offset = 0
                    for count in counts {
                        for k in 0..<count {
                            argv[k] = bytes.baseAddress.map { UnsafePointer($0.assumingMemoryBound(to: CChar.self) + offset) } ?? fallback
                            offset += lengths[argument + k]
                        }
                        let status = redisAppendCommandArgv(
                            context,
                            Int32(count),
                            argv.baseAddress,
                            lengthBuffer.baseAddress.map { $0 + argument }
                        )
                        if status != REDIS_OK { return true }
                        argument += count
                    }
                    return false
                }
            }
        }
        if failed { throw failure() }
    }

    /// Writes everything queued without waiting for replies.
    public func flush() throws(RedisError) {
        var done: Int32 = 0
        while done == 0 {
            if redisBufferWrite(context, &done) != REDIS_OK { throw failure() }
        }
    }

    /// Reads the next reply (flushing queued commands first); blocks up to the command timeout.
    public func readReply() throws(RedisError) -> RedisReply {
        guard !isBroken else { throw RedisError(code: .connectionLost, message: "the connection is broken") }
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw failure() }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// The context's error as a ``RedisError``; the connection is unusable from now on.
    private func failure() -> RedisError {
        isBroken = true
        let text = Self.errorText(context)
        switch context.pointee.err {
        case REDIS_ERR_EOF:
            return RedisError(code: .connectionLost, message: "\(configuration) closed the connection: \(text)")
        case REDIS_ERR_PROTOCOL:
            return RedisError(code: .protocolError, message: "\(configuration): \(text)")
        case REDIS_ERR_IO where text.contains("temporarily unavailable") || text.lowercased().contains("timed out"):
            return RedisError(code: .timedOut, message: "\(configuration) did not answer in time")
        default:
            return RedisError(code: .connectionLost, message: "\(configuration): \(text)")
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    private static func convert(_ reply: UnsafePointer<redisReply>) -> RedisReply {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulk(bytes(r.str, r.len))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                if let element = r.element[i] { elements.append(convert(element)) } else { elements.append(.null) }
            }
            return .array(elements)
        default:
            return .error("unknown reply type \(r.type)")
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    private static func timeval(_ duration: Duration) -> Glibc.timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
