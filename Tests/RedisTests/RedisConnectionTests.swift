//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import Redis
import Testing

private let redisURL = ProcessInfo.processInfo.environment["REDIS_URL"]

@Suite("Redis connections", .enabled(if: redisURL != nil, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(1)))
struct RedisConnectionTests {
    private var configuration: RedisConfiguration { try! RedisConfiguration(url: redisURL!) }
    private let key = "redis-test:\(UUID().uuidString)"

    @Test("pipelined commands come back one reply each, in order, with server errors in place")
    func pipelining() async throws {
        let client = RedisClient(configuration: configuration, name: "t")
        let replies = try await client.execute([
            RedisCommand("SET", key, "v"), RedisCommand("GET", key), RedisCommand("INCR", key), RedisCommand("DEL", key),
            RedisCommand("GET", key), RedisCommand("ECHO", [UInt8]([0, 255, 13, 10, 36])), RedisCommand("PING"),
        ])
        #expect(replies[0] == .status("OK"))
        #expect(replies[1] == .bulk(Array("v".utf8)))
        guard case .error(let message) = replies[2] else {
            Issue.record("INCR on a string should fail")
            return
        }
        #expect(message.hasPrefix("ERR"))
        #expect(replies[3] == .integer(1))
        #expect(replies[4] == .null)
        #expect(replies[5] == .bulk([0, 255, 13, 10, 36]), "bulk strings are binary-safe")
        #expect(replies[6] == .status("PONG"))
    }

    @Test("arrays and empty arguments")
    func arrays() async throws {
        let client = RedisClient(configuration: configuration, name: "t")
        _ = try await client.execute([RedisCommand("RPUSH", key, "", "b"), RedisCommand("LRANGE", key, 0, -1), RedisCommand("DEL", key)])
        let replies = try await client.execute([RedisCommand("RPUSH", key, "", "b"), RedisCommand("LRANGE", key, 0, -1), RedisCommand("DEL", key)])
        #expect(replies[1] == .array([.bulk([]), .bulk(Array("b".utf8))]))
    }

    @Test("SELECT picks the database named in the URL")
    func selectsDatabase() async throws {
        var other = configuration
        other.database = 7
        let seven = RedisClient(configuration: other, name: "t7")
        try await seven.execute(RedisCommand("SET", key, "in-seven"))
        let zero = RedisClient(configuration: configuration, name: "t0")
        #expect(try await zero.execute(RedisCommand("GET", key)) == .null)
        #expect(try await seven.execute(RedisCommand("GET", key)).string == "in-seven")
        try await seven.execute(RedisCommand("DEL", key))
    }

    @Test("AUTH with an ACL user: the right password connects, a wrong one says why")
    func aclUser() async throws {
        let admin = RedisClient(configuration: configuration, name: "admin")
        let user = "bridge-\(UUID().uuidString.prefix(6))"
        try await admin.execute(RedisCommand("ACL", "SETUSER", user, "on", ">pw-1", "~redis-test:*", "+@all"))
        var good = configuration
        good.username = user
        good.password = "pw-1"
        let client = RedisClient(configuration: good, name: "acl")
        #expect(try await client.execute(RedisCommand("ACL", "WHOAMI")).string == user)
        var bad = good
        bad.password = "wrong"
        do {
            _ = try await RedisClient(configuration: bad, name: "bad").execute(RedisCommand("PING"))
            Issue.record("a wrong password connected")
        } catch {
            #expect(error.code == .connectionFailed)
            #expect(error.message.contains("WRONGPASS"))
        }
        try await admin.execute(RedisCommand("ACL", "DELUSER", user))
    }

    @Test("a refused connection says so and names the server")
    func refused() async throws {
        var nowhere = configuration
        nowhere.endpoint = .tcp(host: "127.0.0.1", port: 1)
        do {
            _ = try await RedisClient(configuration: nowhere, name: "none").execute(RedisCommand("PING"))
            Issue.record("connected to port 1")
        } catch {
            #expect(error.code == .connectionFailed)
            #expect(error.message.contains("127.0.0.1:1"))
            #expect(error.message.contains("refused"))
        }
    }

    @Test("a command that outlasts the timeout fails as timed out, and the next call reconnects")
    func timeout() async throws {
        var quick = configuration
        quick.commandTimeout = .milliseconds(200)
        // A group of its own: its timeout would otherwise cut the other tests' connections.
        let client = RedisClient(configuration: quick, name: "quick", losses: ConnectionLosses())
        let started = ContinuousClock.now
        do {
            // Redis answers in 10 s; the socket gives up after 0.2 s (with room for a loaded machine).
            _ = try await client.execute(RedisCommand("BLPOP", key, 10))
            Issue.record("BLPOP returned before its timeout")
        } catch {
            #expect(error.code == .timedOut)
            #expect(error.isConnectionFailure)
        }
        #expect(ContinuousClock.now - started < .seconds(8))
        #expect(await client.isConnected == false)
        #expect(try await client.execute(RedisCommand("PING")) == .status("PONG"))
    }

    @Test("a Pub/Sub subscriber gets published messages")
    func pubSub() async throws {
        let subscriber = RedisClient(configuration: configuration, name: "sub")
        try await subscriber.subscribe([key])
        let publisher = RedisClient(configuration: configuration, name: "pub")
        #expect(try await publisher.execute(RedisCommand("PUBLISH", key, "hello")) == .integer(1))
        let message = try await subscriber.nextMessage()
        #expect(message.channel == key)
        #expect(message.payload == Array("hello".utf8))
    }

    @Test("nested replies keep their shape: arrays in arrays, nulls, integers, errors and empty arrays")
    func nestedReplies() async throws {
        let script = "return {1, {'a', {}, {false, 'b'}}, redis.error_reply('E no'), -7, ''}"
        var pipeline = RedisPipeline()
        pipeline.begin("EVAL")
        pipeline.add(script)
        pipeline.add(0)
        pipeline.begin("PING")
        let replies = try await RedisClient(configuration: configuration, name: "t").execute(pipeline)
        #expect(replies.count == 2)
        #expect(
            replies[0].reply
                == .array([
                    .integer(1), .array([.bulk(Array("a".utf8)), .array([]), .array([.null, .bulk(Array("b".utf8))])]), .error("E no"), .integer(-7),
                    .bulk([]),
                ])
        )
        let top = replies[0].elements
        #expect(top.count == 5)
        #expect(top[1].elements[2].elements[1].string == "b", "elements after a nested array are found by skipping its subtree")
        #expect(top[2].errorMessage == "E no")
        #expect(top[3].int == -7)
        #expect(top[4].kind == .bulk && top[4].bytes?.isEmpty == true)
        #expect(replies[1].reply == .status("PONG"))
    }

    @Test("a pipeline larger than the socket buffers is written whole, and large replies are read whole")
    func largePipelines() async throws {
        let client = RedisClient(configuration: configuration, name: "t")
        let value = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var pipeline = RedisPipeline()
        for k in 0..<60 {
            pipeline.begin("SET")
            pipeline.add("\(key):\(k)")
            pipeline.add(value)
        }
        for k in 0..<60 {
            pipeline.begin("GET")
            pipeline.add("\(key):\(k)")
        }
        pipeline.begin("INCR")
        pipeline.add("\(key):0")
        let replies = try await client.execute(pipeline)
        #expect(replies.count == 121)
        #expect((0..<60).allSatisfy { replies[$0].reply == .status("OK") })
        #expect((60..<120).allSatisfy { replies[$0].bytes.map(Array.init) == value })
        #expect(replies[120].errorMessage?.hasPrefix("ERR") == true)
        var cleanup = RedisPipeline()
        cleanup.begin("DEL")
        for k in 0..<60 { cleanup.add("\(key):\(k)") }
        #expect(try await client.execute(cleanup)[0].int == 60)
    }

    @Test("executeForErrors reports the failing commands by position")
    func errorsByPosition() async throws {
        var pipeline = RedisPipeline()
        pipeline.begin("SET")
        pipeline.add(key)
        pipeline.add("text")
        pipeline.begin("INCR")
        pipeline.add(key)
        pipeline.begin("GET")
        pipeline.add(key)
        pipeline.begin("HGET")
        pipeline.add(key)
        pipeline.add("f")
        pipeline.begin("DEL")
        pipeline.add(key)
        let errors = try await RedisClient(configuration: configuration, name: "t").executeForErrors(pipeline)
        #expect(errors.map(\.index) == [1, 3])
        #expect(errors.allSatisfy { $0.message.contains("ERR") || $0.message.contains("WRONGTYPE") })
    }

    @Test("deferred commands run in order; their errors surface with the next command's replies, or on settle")
    func deferredReplies() throws {
        let link = RedisLink(configuration: configuration)
        defer { link.disconnect() }
        var deferred = RedisPipeline()
        for _ in 0..<3000 {
            deferred.begin("INCR")
            deferred.add(key)
        }
        deferred.begin("HGET")
        deferred.add(key)
        deferred.add("f")
        try link.sendDeferred(deferred)
        // The next command's replies are its own, after Redis ran the deferred ones.
        #expect(try link.execute(RedisCommand("GET", key)).string == "3000")
        #expect(link.takeDeferredErrors().map { $0.hasPrefix("WRONGTYPE") } == [true])
        #expect(link.takeDeferredErrors().isEmpty, "errors are handed over once")
        try link.sendDeferred(deferred)
        try link.settle()
        #expect(link.takeDeferredErrors().count == 1)
        #expect(try link.execute(RedisCommand("DEL", key)).int == 1)
        try link.settle()
    }

    @Test("commands are written as RESP with exact lengths, numbers in decimal")
    func wireFormat() {
        var pipeline = RedisPipeline()
        pipeline.begin("SET")
        pipeline.add("k")
        pipeline.add([UInt8]([0, 13, 10]))
        pipeline.add(-42)
        pipeline.add(1_234_567_890_123)
        pipeline.addBytes(joining: Array("{".utf8), Array("body".utf8), Array("}".utf8))
        #expect(pipeline.count == 1)
        #expect(
            pipeline.arguments(of: 0) == [
                Array("SET".utf8), Array("k".utf8), [0, 13, 10], Array("-42".utf8), Array("1234567890123".utf8), Array("{body}".utf8),
            ]
        )
        #expect(
            String(decoding: pipeline.buffer, as: UTF8.self)
                == "$3\r\nSET\r\n$1\r\nk\r\n$3\r\n\u{0}\r\n\r\n$3\r\n-42\r\n$13\r\n1234567890123\r\n$6\r\n{body}\r\n"
        )
    }
}
