//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// An async Redis connection: one hiredis connection on a thread of its own.
///
/// Commands run in order on that thread, so the blocking C calls stay off Swift's cooperative pool.
/// The connection is made on first use and made again after it breaks; a failure is thrown to the
/// caller, who decides whether and when to retry (the bridge backs off).
public actor RedisClient {
    public nonisolated let configuration: RedisConfiguration
    private let executor: ThreadExecutor
    private var connection: RedisConnection?

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// - Parameters:
    ///   - configuration: where to connect; its command timeout applies to every command.
    ///   - name: the thread's name, for debuggers and `top -H`.
    public init(configuration: RedisConfiguration, name: String) {
        self.configuration = configuration
        self.executor = ThreadExecutor(name: name)
    }

    deinit {
        executor.shutdown()
    }

    /// Whether a working connection is open now.
    public var isConnected: Bool {
        guard let connection else { return false }
        return !connection.isBroken
    }

    /// Opens the connection if it is not open.
    public func connect() throws(RedisError) {
        _ = try open()
    }

    /// Sends the commands in one round trip and returns one reply per command.
    public func execute(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        let connection = try open()
        do {
            return try connection.execute(commands)
        } catch {
            if connection.isBroken { self.connection = nil }
            throw error
        }
    }

    /// Sends one command; a server error is thrown as ``RedisError``.
    @discardableResult
    public func execute(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        try execute([command])[0].get()
    }

    /// Subscribes to Pub/Sub channels; the connection then only takes ``nextMessage()``.
    public func subscribe(_ channels: [String]) throws(RedisError) {
        let connection = try open()
        do {
            try connection.send([RedisCommand("SUBSCRIBE", arguments: channels)])
            for _ in channels { _ = try connection.readReply().get() }
        } catch {
            self.connection = nil
            throw error
        }
    }

    /// Waits (up to the command timeout) for the next Pub/Sub message: `(channel, payload)`.
    public func nextMessage() throws(RedisError) -> (channel: String, payload: [UInt8]) {
        let connection = try open()
        while true {
            let reply: RedisReply
            do {
                reply = try connection.readReply()
            } catch {
                self.connection = nil
                throw error
            }
            if case .array(let parts) = reply, parts.count == 3, parts[0].string == "message",
                let channel = parts[1].string, let payload = parts[2].bytes
            {
                return (channel, payload)
            }
        }
    }

    /// Closes the connection; the next command opens a new one.
    public func disconnect() {
        connection = nil
    }

    private func open() throws(RedisError) -> RedisConnection {
        if let connection, !connection.isBroken { return connection }
        connection = nil
        let fresh = try RedisConnection(configuration: configuration)
        connection = fresh
        return fresh
    }
}
