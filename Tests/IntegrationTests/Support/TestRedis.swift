//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import Foundation
import JSONPatch
import Logging
import Redis
import TaskStatus
import TestFixtures
import Testing

/// The Redis the integration tests use: `$REDIS_URL`, which `scripts/test` points at a private
/// `redis-server` on a free loopback port.
enum TestRedis {
    static let url = ProcessInfo.processInfo.environment["REDIS_URL"]
    static var isAvailable: Bool { url != nil }
    static var configuration: RedisConfiguration { try! RedisConfiguration(url: url!) }

    static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }()
}

/// A key prefix of its own for one test, and a connection; every key under the prefix is deleted
/// when the test ends, on every path.
struct TestSpace {
    let prefix: String
    let redis: RedisClient
    /// The server: the test run's shared one, or a test's private one.
    let configuration: RedisConfiguration
    var keys: Keys { Keys(prefix: prefix) }

    /// - Parameter configuration: a private server for tests that change server-wide state
    ///   (`SCRIPT FLUSH`), which would disturb the tests running beside them on the shared one.
    static func with<T>(on configuration: RedisConfiguration = TestRedis.configuration, _ body: (TestSpace) async throws -> T) async throws -> T {
        let space = TestSpace(
            prefix: "test-\(UUID().uuidString.prefix(8).lowercased())",
            redis: RedisClient(configuration: configuration, name: "test-redis"),
            configuration: configuration
        )
        return try await withCleanUp {
            try await body(space)
        } cleanUp: {
            try await space.cleanUp()
        }
    }

    /// Runs `body` in a space on a Redis server of its own, stopped afterwards: for tests that
    /// change server-wide state (`SCRIPT FLUSH`).
    static func withPrivateServer<T>(_ body: (TestSpace) async throws -> T) async throws -> T {
        let server = try PrivateRedis()
        return try await withCleanUp {
            try await with(on: try RedisConfiguration(url: server.url), body)
        } cleanUp: {
            await server.stop()
        }
    }

    func cleanUp() async throws {
        var cursor = "0"
        for _ in 0..<10_000 {
            let reply = try await redis.execute(RedisCommand("SCAN", cursor, "MATCH", "\(prefix)*", "COUNT", 1000))
            guard case .array(let parts) = reply, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else { return }
            let names = keys.compactMap(\.string)
            if !names.isEmpty { _ = try await redis.execute(RedisCommand("DEL", arguments: names)) }
            cursor = next
            if cursor == "0" { return }
        }
    }

    /// Runs one command; server errors throw.
    @discardableResult
    func run(_ name: String, _ arguments: any RedisArgument...) async throws -> RedisReply {
        try await redis.execute(RedisCommand(name, arguments: arguments))
    }

    /// Stores a task (validated, through the client's `put`).
    @discardableResult
    func putTask(_ id: String, _ changes: [String: JSONValue] = [:]) async throws -> TaskRecord {
        var document = Fixtures.task(id)
        if case .object(var object) = document {
            for (key, value) in changes { object[key] = value }
            document = .object(object)
        }
        return try await TaskStatusClient(configuration: configuration, prefix: prefix).put(document)
    }

    func hash(_ id: String) async throws -> [String: String] {
        let reply = try await run("HGETALL", keys.task(id))
        var result: [String: String] = [:]
        for pair in reply.pairs ?? [] { result[String(decoding: pair.field, as: UTF8.self)] = String(decoding: pair.value, as: UTF8.self) }
        return result
    }

    /// Queues a request entry with the given fields; returns its entry id.
    @discardableResult
    func enqueue(_ fields: [(String, String)]) async throws -> String {
        var arguments: [any RedisArgument] = [keys.requests, "*"]
        for (field, value) in fields {
            arguments.append(field)
            arguments.append(value)
        }
        return try await redis.execute(RedisCommand("XADD", arguments: arguments)).string!
    }

    /// Queues a well-formed request.
    @discardableResult
    func enqueue(task id: String, patch: String, requestId: String, extra: [(String, String)] = []) async throws -> String {
        try await enqueue([("id", id), ("patch", patch), ("request-id", requestId), ("x-sailpoint-experimental", "true")] + extra)
    }

    /// Waits for the stored reply of a request.
    func reply(task id: String, requestId: String, timeout: Duration = .seconds(10)) async throws -> JSONValue {
        let key = keys.reply(taskId: id, requestId: requestId)
        let found = try await eventually(timeout: timeout) { () async throws -> JSONValue? in
            guard let bytes = try await redis.execute(RedisCommand("GET", key)).bytes else { return nil }
            return try JSONValue(parsing: bytes)
        }
        return try #require(found, "no reply stored at \(key) within \(timeout)")
    }
}

/// Runs `body`, then `cleanUp` on every path; after `body` threw, a failing clean-up is not
/// reported (the first error is the one to see).
func withCleanUp<T>(_ body: () async throws -> T, cleanUp: () async throws -> Void) async throws -> T {
    do {
        let result = try await body()
        try await cleanUp()
        return result
    } catch {
        try? await cleanUp()
        throw error
    }
}

/// Polls `body` until it returns a value or `timeout` passes (bounded in time and count).
func eventually<T>(
    timeout: Duration = .seconds(10),
    every interval: Duration = .milliseconds(20),
    _ body: () async throws -> T?
)
    async rethrows -> T?
{
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let value = try await body() { return value }
        try? await Task.sleep(for: interval)
    }
    return try await body()
}
