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
    /// Where hiredis's reader puts the values it parses (see ``ReplyArena``).
    private let arena = ReplyArena()
    /// The commands of one round trip in RESP, kept from call to call.
    private var wire: [UInt8] = []
    /// Replies to commands sent by ``sendDeferred(_:)`` not read yet, and the errors among those read.
    private var owed = 0
    /// The size of the last pipeline sent, and how long Redis takes per byte (see ``ReplyPacer``).
    private var sentBytes = 0
    private var pacer = ReplyPacer()
    private var deferredErrors: [String] = []

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
        arena.install(in: context.pointee.reader)
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

    /// Whether a reply read so far said this node is no longer the master (`READONLY`,
    /// `UNBLOCKED`); forgotten once taken.
    public func takeRoleChange() -> Bool {
        defer { arena.sawRoleChange = false }
        return arena.sawRoleChange
    }

    /// Changes the socket timeout that applies to every command from now on.
    public func setCommandTimeout(_ timeout: Duration) {
        _ = redisSetTimeout(context, Self.timeval(timeout))
    }

    /// Sends all commands before reading any reply (one round trip), then returns one reply per
    /// command. A server error answers its own command as ``RedisReply/error(_:)``; a connection
    /// failure throws and breaks the connection.
    public func execute(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        try execute(RedisPipeline(commands)).all
    }

    /// Sends a pipeline in one round trip and returns one reply per command.
    public func execute(_ pipeline: RedisPipeline) throws(RedisError) -> RedisReplies {
        let sent = ContinuousClock.now
        try send(pipeline)
        let bytes = sentBytes
        pacer.pause(after: bytes)
        let replies = try receive(pipeline.count)
        pacer.record(bytes: bytes, elapsed: ContinuousClock.now - sent)
        return replies
    }

    /// Reads the replies to `count` commands written by ``send(_:)-(RedisPipeline)``, after
    /// those still owed to deferred ones: a caller that talks to several servers sends to each
    /// before it reads from any.
    public func receive(_ count: Int) throws(RedisError) -> RedisReplies {
        try readOwedReplies()
        arena.reset()
        var roots: [Int] = []
        roots.reserveCapacity(count)
        for _ in 0..<count { roots.append(try readRoot()) }
        return arena.take(roots: roots)
    }

    /// Like ``execute(_:)`` for commands whose answers only matter when they fail: the replies are
    /// not kept; the server's error messages are returned, with the positions of the commands
    /// they answer.
    public func executeForErrors(_ pipeline: RedisPipeline) throws(RedisError) -> [(index: Int, message: String)] {
        try send(pipeline)
        try readOwedReplies()
        var errors: [(index: Int, message: String)] = []
        for index in 0..<pipeline.count {
            arena.reset()
            let root = try readRoot()
            if let message = arena.errorMessage(at: root) { errors.append((index, message)) }
        }
        arena.reset()
        return errors
    }

    /// Writes commands to the socket; their replies are read with ``readReply()``.
    public func send(_ commands: [RedisCommand]) throws(RedisError) {
        try send(RedisPipeline(commands))
    }

    /// Writes a pipeline's commands to the socket in one piece.
    ///
    /// The commands are formatted here rather than by `redisAppendCommandArgv`, which builds a
    /// string per command and grows hiredis's output buffer by copying: for a batch of large
    /// replies that was most of the cost of sending. hiredis still reads and parses the replies.
    public func send(_ pipeline: RedisPipeline) throws(RedisError) {
        guard !isBroken else { throw RedisError(code: .connectionLost, message: "the connection is broken") }
        guard !pipeline.isEmpty else { return }
        wire.removeAll(keepingCapacity: true)
        pipeline.write(to: &wire)
        sentBytes = wire.count
        let fd = context.pointee.fd
        let failure: Int32? = wire.withUnsafeBytes { bytes -> Int32? in
            var offset = 0
            while offset < bytes.count {
                // MSG_NOSIGNAL: a closed connection is an error to report, not a SIGPIPE.
                let written = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                if written > 0 {
                    offset += written
                } else if written < 0, errno == EINTR {
                    continue
                } else {
                    return written < 0 ? errno : EPIPE
                }
            }
            return nil
        }
        // A huge round trip should not pin its buffer for the life of the connection.
        if wire.capacity > 8 << 20 { wire = [] }
        if let failure { throw writeFailure(failure) }
    }

    /// Sends a pipeline whose successful answers do not matter, without waiting for them: they
    /// are read, and their errors kept for ``takeDeferredErrors()``, before the replies of the
    /// next command on this connection, or by ``settle()``. This saves the wait, and the wake-ups
    /// while Redis answers a long pipeline piece by piece.
    public func sendDeferred(_ pipeline: RedisPipeline) throws(RedisError) {
        try send(pipeline)
        owed += pipeline.count
    }

    /// Reads the replies still owed to ``sendDeferred(_:)``: when it returns, Redis has run those commands.
    public func settle() throws(RedisError) {
        try readOwedReplies()
    }

    /// The server's errors in reply to deferred commands read so far (in order), and forgets them.
    public func takeDeferredErrors() -> [String] {
        defer { deferredErrors = [] }
        return deferredErrors
    }

    private func readOwedReplies() throws(RedisError) {
        while owed > 0 {
            arena.reset()
            let root = try readRoot()
            owed -= 1
            // Anywhere in the reply: a transaction's `EXEC` answers each command's error inside its array.
            arena.forEachError(from: root) { deferredErrors.append($0) }
        }
    }

    /// Reads the next reply; blocks up to the command timeout.
    public func readReply() throws(RedisError) -> RedisReply {
        try readOwedReplies()
        arena.reset()
        let root = try readRoot()
        let reply = arena.take(roots: [root])[0].reply
        return reply
    }

    /// Reads one reply into the arena and returns its first node.
    private func readRoot() throws(RedisError) -> Int {
        guard !isBroken else { throw RedisError(code: .connectionLost, message: "the connection is broken") }
        let root = arena.nodeCount
        var raw: UnsafeMutableRawPointer?
        // Always ask for the reply: with a nil pointer hiredis would free it as its own kind.
        guard redisGetReply(context, &raw) == REDIS_OK, raw != nil else { throw failure() }
        arena.close(root)
        return root
    }

    private func writeFailure(_ code: Int32) -> RedisError {
        isBroken = true
        if code == EAGAIN || code == EWOULDBLOCK {
            return RedisError(code: .timedOut, message: "\(configuration) did not take the commands in time")
        }
        let text = String(cString: strerror(code))
        return RedisError(code: .connectionLost, message: "\(configuration): \(text)")
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

    private static func timeval(_ duration: Duration) -> Glibc.timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
