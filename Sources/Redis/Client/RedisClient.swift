//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// An async Redis connection: a ``RedisLink`` on a thread of its own.
///
/// Commands run in order on that thread, so the blocking C calls stay off Swift's cooperative pool.
/// The connection is made on first use and made again after it breaks; a failure is thrown to the
/// caller, who decides whether and when to retry.
public actor RedisClient {
    public nonisolated let configuration: RedisConfiguration
    private let executor: ThreadExecutor
    private let link: RedisLink

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// - Parameters:
    ///   - configuration: where to connect; its command timeout applies to every command.
    ///   - name: the thread's name, for debuggers and `top -H`.
    public init(configuration: RedisConfiguration, name: String) {
        self.init(configuration: configuration, name: name, losses: nil)
    }

    /// - Parameter losses: the group whose losses and silences this client's connections share
    ///   (see ``ConnectionLosses``; `nil`: its deployment's); a group of its own keeps this
    ///   client's timeouts from cutting the process's other connections (a probe with a short
    ///   timeout, a test).
    package init(configuration: RedisConfiguration, name: String, losses: ConnectionLosses?) {
        self.configuration = configuration
        self.executor = ThreadExecutor(name: name)
        self.link = RedisLink(configuration: configuration, losses: losses)
    }

    deinit {
        executor.shutdown()
    }

    /// Whether a working connection is open now.
    public var isConnected: Bool { link.isConnected }

    /// Opens the connection if it is not open.
    public func connect() throws(RedisError) { try link.connect() }

    /// Sends the commands in one round trip and returns one reply per command.
    public func execute(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] { try link.execute(commands) }

    /// Sends one command; a server error is thrown as ``RedisError``.
    @discardableResult
    public func execute(_ command: RedisCommand) throws(RedisError) -> RedisReply { try link.execute(command) }

    /// Sends one command and returns its reply as a view; a server error is thrown as ``RedisError``.
    public func value(of command: RedisCommand) throws(RedisError) -> RedisValue { try link.value(of: command) }

    /// Sends a pipeline in one round trip and returns one reply per command.
    public func execute(_ pipeline: RedisPipeline) throws(RedisError) -> RedisReplies { try link.execute(pipeline) }

    /// Sends a pipeline in one round trip, keeping only the errors.
    public func executeForErrors(_ pipeline: RedisPipeline) throws(RedisError) -> [(index: Int, message: String)] {
        try link.executeForErrors(pipeline)
    }

    /// Subscribes to Pub/Sub channels (with `sharded`, shard channels in one slot, `SSUBSCRIBE`);
    /// the connection then only takes ``nextMessage()``.
    public func subscribe(_ channels: [String], sharded: Bool = false) throws(RedisError) { try link.subscribe(channels, sharded: sharded) }

    /// Waits (up to the command timeout) for the next Pub/Sub message: `(channel, payload)`.
    public func nextMessage() throws(RedisError) -> (channel: String, payload: [UInt8]) { try link.nextMessage() }

    /// Closes the connection; the next command opens a new one.
    public func disconnect() { link.disconnect() }

    /// Runs `body` on this client's thread with its link, for work that makes several calls in a
    /// row without hopping back to the caller between them.
    package func withLink<T: Sendable, E: Error>(_ body: (RedisLink) throws(E) -> T) throws(E) -> T {
        try body(link)
    }
}
