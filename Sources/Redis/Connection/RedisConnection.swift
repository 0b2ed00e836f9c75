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

/// One blocking connection to one Redis server: the only owner of its `redisContext`.
///
/// hiredis 0.14 connects the socket and parses replies; the bytes themselves go through the
/// socket here, plain or in TLS (``TLSSession``), so that TLS sits under the same reader. Every
/// call blocks the calling thread, so it must never run on Swift's cooperative pool; use it
/// through ``RedisClient``, which gives each connection a thread of its own. A connection is
/// unusable after any I/O error: it then reports ``isBroken`` and is replaced, never reconnected
/// in place (`redisReconnect` would lose the timeouts, `AUTH`, `SELECT` and TLS).
package final class RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>
    package let configuration: RedisConfiguration
    /// Set after an I/O or protocol error; the connection must then be dropped.
    package private(set) var isBroken = false
    /// The loss epoch when the connection was made (see ``ConnectionLosses``).
    package let epoch: UInt64
    private let losses: ConnectionLosses
    private let handle: SocketHandle
    /// What reads and writes the socket: itself, or a TLS session on it.
    private var socket: SocketLayer
    /// Where socket reads land before hiredis's reader takes them.
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 << 10, alignment: 8)
    /// Whether the server has sent anything yet: a plain connection that a server closes before
    /// its first byte is often one to a TLS port.
    private var receivedAny = false
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

    /// Connects (in TLS when configured, verifying the server's certificate), applies the
    /// timeouts and keepalive, and sends `AUTH` and `SELECT` as configured.
    ///
    /// - Parameter losses: the group it tells of its loss or silence (see ``ConnectionLosses``);
    ///   by default its deployment's.
    package init(configuration: RedisConfiguration, losses: ConnectionLosses? = nil) throws(RedisError) {
        self.configuration = configuration
        let losses = losses ?? .shared(for: configuration)
        self.losses = losses
        self.epoch = losses.epoch
        let timeout = Self.timeval(configuration.connectTimeout)
        let connected: UnsafeMutablePointer<redisContext>?
        switch configuration.endpoint {
        case .tcp(let host, let port):
            connected = redisConnectWithTimeout(host, Int32(port), timeout)
        case .unix(let path):
            connected = redisConnectUnixWithTimeout(path, timeout)
        }
        guard let connected else {
            readBuffer.deallocate()
            throw RedisError(code: .connectionFailed, message: "cannot allocate a hiredis context")
        }
        guard connected.pointee.err == 0 else {
            let text = Self.errorText(connected)
            redisFree(connected)
            readBuffer.deallocate()
            let code: RedisError.Code = text.lowercased().contains("timed out") ? .timedOut : .connectionFailed
            losses.reportLoss()
            throw RedisError(code: code, message: "cannot connect to \(configuration): \(text)")
        }
        context = connected
        socket = .plain(connected.pointee.fd)
        handle = SocketHandle(node: configuration.endpoint, descriptor: connected.pointee.fd)
        // Keep the reply buffer between replies instead of freeing it past 16 KiB: a busy
        // connection would otherwise map and fault in a new one for every large reply.
        context.pointee.reader.pointee.maxbuf = 0
        arena.install(in: context.pointee.reader)
        if case .tcp(let host, _) = configuration.endpoint {
            Self.setKeepalive(on: connected.pointee.fd, keepalive: configuration.keepalive, userTimeout: configuration.commandTimeout)
            if let settings = configuration.tls {
                // The handshake is bounded by the connect timeout, the commands by theirs.
                _ = redisSetTimeout(context, timeout)
                let tlsContext: TLSContext
                do {
                    tlsContext = try TLSContext.shared(for: settings)
                } catch {
                    isBroken = true
                    throw error
                }
                do throws(SocketFailure) {
                    socket = .tls(
                        try TLSSession(
                            context: tlsContext,
                            socket: connected.pointee.fd,
                            name: settings.verifiedName(forHost: host, seedName: settings.seedName)
                        )
                    )
                } catch {
                    isBroken = true
                    throw failure(error, connecting: true)
                }
            }
        } else if configuration.tls != nil {
            isBroken = true
            throw RedisError(code: .invalidConfiguration, message: "TLS needs a TCP address, not the socket \(configuration)")
        }
        _ = redisSetTimeout(context, Self.timeval(configuration.commandTimeout))
        losses.register(handle)

        var setup: [RedisCommand] = []
        if let password = configuration.password {
            setup.append(configuration.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password))
        }
        if configuration.database != 0 { setup.append(RedisCommand("SELECT", configuration.database)) }
        // In TLS 1.3 a server refuses our certificate after the handshake: a first round trip
        // makes the refusal a connect failure rather than the first command's.
        if setup.isEmpty && socket.isTLS { setup.append(RedisCommand("PING")) }
        if !setup.isEmpty {
            let replies: [RedisReply]
            do {
                replies = try execute(setup)
            } catch  where error.code == .connectionLost && socket.isTLS && !receivedAny && error.message.contains("reset") {
                // A server that refuses a client certificate in TLS 1.3 sends its alert after the
                // handshake and closes; our first command then meets a reset that loses the alert.
                let given = configuration.tls?.certificateFile.map { "the client certificate \($0)" } ?? "a client certificate (none was given)"
                throw RedisError(
                    code: .certificateRejected,
                    message:
                        "\(configuration): the server refused our client certificate (it reset the TLS connection before any answer): it requires \(given) signed by a CA it trusts (tls-auth-clients yes); give one with --redis-tls-cert-file and --redis-tls-key-file"
                )
            }
            for reply in replies {
                if case .error(let message) = reply {
                    throw RedisError(code: .connectionFailed, message: "\(configuration) refused the connection set-up: \(message)")
                }
            }
        }
    }

    deinit {
        handle.close()
        losses.unregister(handle)
        // The session says goodbye on the socket before hiredis closes it.
        socket = .plain(-1)
        redisFree(context)
        readBuffer.deallocate()
    }

    /// The TLS protocol and cipher agreed, or `nil` for a plain connection.
    package var tlsAgreed: String? {
        guard case .tls(let session) = socket else { return nil }
        return session.agreed
    }

    /// Whether a reply read so far said this node is no longer the master (`READONLY`,
    /// `UNBLOCKED`); forgotten once taken.
    package func takeRoleChange() -> Bool {
        defer { arena.sawRoleChange = false }
        return arena.sawRoleChange
    }

    /// Changes the socket timeout that applies to every command from now on.
    package func setCommandTimeout(_ timeout: Duration) {
        _ = redisSetTimeout(context, Self.timeval(timeout))
    }

    /// Sends all commands before reading any reply (one round trip), then returns one reply per
    /// command. A server error answers its own command as ``RedisReply/error(_:)``; a connection
    /// failure throws and breaks the connection.
    package func execute(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        try execute(RedisPipeline(commands)).all
    }

    /// Sends a pipeline in one round trip and returns one reply per command.
    package func execute(_ pipeline: RedisPipeline) throws(RedisError) -> RedisReplies {
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
    package func receive(_ count: Int) throws(RedisError) -> RedisReplies {
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
    package func executeForErrors(_ pipeline: RedisPipeline) throws(RedisError) -> [(index: Int, message: String)] {
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
    package func send(_ commands: [RedisCommand]) throws(RedisError) {
        try send(RedisPipeline(commands))
    }

    /// Writes a pipeline's commands to the socket in one piece.
    ///
    /// The commands are formatted here rather than by `redisAppendCommandArgv`, which builds a
    /// string per command and grows hiredis's output buffer by copying: for a batch of large
    /// replies that was most of the cost of sending. hiredis still parses the replies.
    package func send(_ pipeline: RedisPipeline) throws(RedisError) {
        guard !isBroken else { throw RedisError(code: .connectionLost, message: "the connection is broken") }
        guard !pipeline.isEmpty else { return }
        wire.removeAll(keepingCapacity: true)
        pipeline.write(to: &wire)
        sentBytes = wire.count
        let socket = self.socket
        let failure: SocketFailure? = wire.withUnsafeBytes { bytes -> SocketFailure? in
            do throws(SocketFailure) {
                try socket.write(bytes)
                return nil
            } catch {
                return error
            }
        }
        // A huge round trip should not pin its buffer for the life of the connection.
        if wire.capacity > 8 << 20 { wire = [] }
        if let failure {
            isBroken = true
            throw self.failure(failure, connecting: false)
        }
    }

    /// Sends a pipeline whose successful answers do not matter, without waiting for them: they
    /// are read, and their errors kept for ``takeDeferredErrors()``, before the replies of the
    /// next command on this connection, or by ``settle()``. This saves the wait, and the wake-ups
    /// while Redis answers a long pipeline piece by piece.
    package func sendDeferred(_ pipeline: RedisPipeline) throws(RedisError) {
        try send(pipeline)
        owed += pipeline.count
    }

    /// Reads the replies still owed to ``sendDeferred(_:)``: when it returns, Redis has run those commands.
    package func settle() throws(RedisError) {
        try readOwedReplies()
    }

    /// The server's errors in reply to deferred commands read so far (in order), and forgets them.
    package func takeDeferredErrors() -> [String] {
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
    package func readReply() throws(RedisError) -> RedisReply {
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
        // Bounded by the socket's timeout per read, and by the reply's size.
        while true {
            // Always ask for the reply: with a nil pointer hiredis would free it as its own kind.
            guard redisGetReplyFromReader(context, &raw) == REDIS_OK else { throw protocolFailure() }
            if raw != nil { break }
            try fill()
        }
        arena.close(root)
        return root
    }

    /// Reads what the server has sent (waiting up to the command timeout) into hiredis's reader.
    private func fill() throws(RedisError) {
        handle.setWaiting(true)
        defer { handle.setWaiting(false) }
        var count = 0
        do throws(SocketFailure) {
            count = try socket.read(into: readBuffer)
            // A TLS record (handshake 0x16, alert 0x15) where RESP was expected.
            if !receivedAny, !socket.isTLS, readBuffer[0] == 0x15 || readBuffer[0] == 0x16 {
                throw SocketFailure.notTLS("the server answered in TLS: use rediss:// for this port")
            }
        } catch {
            isBroken = true
            throw failure(error, connecting: false)
        }
        receivedAny = true
        _ = redisReaderFeed(context.pointee.reader, readBuffer.baseAddress?.assumingMemoryBound(to: CChar.self), count)
    }

    /// A socket failure as a ``RedisError`` naming the server; the connection is unusable from
    /// now on. A timeout tells the other connections to this node (see ``ConnectionLosses``).
    private func failure(_ failure: SocketFailure, connecting: Bool) -> RedisError {
        isBroken = true
        switch failure {
        case .timedOut:
            losses.reportSilence(of: configuration.endpoint, except: handle)
            let what = connecting ? "did not complete the TLS handshake (is it a plain port? use redis:// for it)" : "did not answer"
            return RedisError(code: .timedOut, message: "\(configuration) \(what) within the timeout")
        case .closed(let text):
            losses.reportLoss()
            if handle.wasCut {
                return RedisError(
                    code: .connectionLost,
                    message: "\(configuration): cut, since another connection to this server got no answer in time (\(text))"
                )
            }
            let hint = configuration.tls == nil && !receivedAny ? " (before any answer: if this port speaks TLS, use rediss://)" : ""
            return RedisError(code: .connectionLost, message: "\(configuration): \(text)\(hint)")
        case .certificate(let text):
            losses.reportLoss()
            return RedisError(code: .certificateRejected, message: "\(configuration): \(text)")
        case .notTLS(let text):
            losses.reportLoss()
            return RedisError(code: .tlsFailed, message: "\(configuration): \(text)")
        case .tls(let text):
            losses.reportLoss()
            return RedisError(code: .tlsFailed, message: "\(configuration): TLS failed: \(text)")
        }
    }

    /// The reader could not parse what the server sent.
    private func protocolFailure() -> RedisError {
        isBroken = true
        losses.reportLoss()
        return RedisError(code: .protocolError, message: "\(configuration): \(Self.errorText(context))")
    }

    /// TCP keepalive finds a dead peer of an idle connection within `keepalive` (probes from half
    /// of it, three of them over the rest); `TCP_USER_TIMEOUT` gives up on data the peer does not
    /// acknowledge within `userTimeout`, rather than retransmitting for many minutes.
    private static func setKeepalive(on fd: Int32, keepalive: Duration, userTimeout: Duration) {
        let seconds = max(2, Int32(keepalive.components.seconds))
        func set(_ level: Int32, _ option: Int32, _ value: Int32) {
            var value = value
            _ = setsockopt(fd, level, option, &value, socklen_t(MemoryLayout<Int32>.size))
        }
        set(SOL_SOCKET, SO_KEEPALIVE, 1)
        set(Int32(IPPROTO_TCP), TCP_KEEPIDLE, max(1, seconds / 2))
        set(Int32(IPPROTO_TCP), TCP_KEEPINTVL, max(1, seconds / 6))
        set(Int32(IPPROTO_TCP), TCP_KEEPCNT, 3)
        set(
            Int32(IPPROTO_TCP),
            TCP_USER_TIMEOUT,
            Int32(clamping: userTimeout.components.seconds * 1000 + userTimeout.components.attoseconds / 1_000_000_000_000_000)
        )
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
