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
import Redis
import TaskStatus
import TestFixtures
import Testing

/// A key prefix of its own on the loopback cluster, with the bridge settings of contract section 7;
/// every key under the prefix is deleted from every master when the test ends.
struct ClusterSpace {
    let prefix: String
    let shards: Int
    let pubsub: PubSubMode
    let configuration: RedisConfiguration
    let redis: RedisClient

    var keys: Keys { Keys(prefix: prefix, shardedPubSub: pubsub == .sharded) }
    var client: TaskStatusClient { TaskStatusClient(configuration: configuration, prefix: prefix, shards: shards, pubsub: pubsub) }

    /// The keys of shard `k`.
    func shard(_ k: Int) -> Keys { keys.forShard(k, of: shards) }
    /// The keys of the shard a task's requests go to.
    func shard(ofTask id: String) -> Keys { keys.forTask(id, of: shards) }

    /// - Parameter tls: on the TLS-only cluster (``TestCluster/tlsSeeds``).
    static func with<T>(shards: Int, pubsub: PubSubMode = .classic, tls: Bool = false, _ body: (ClusterSpace) async throws -> T) async throws -> T {
        let seeds = (tls ? TestCluster.tlsSeeds : TestCluster.seeds).map { RedisConfiguration.Endpoint.tcp(host: $0.host, port: $0.port) }
        let prefix = "ct-\(UUID().uuidString.prefix(8).lowercased())"
        var configuration = RedisConfiguration(endpoint: seeds[0], tls: tls ? TestTLS.settings() : nil)
        configuration.cluster = ClusterConfiguration(seeds: seeds)
        let space = ClusterSpace(
            prefix: prefix,
            shards: shards,
            pubsub: pubsub,
            configuration: configuration,
            redis: RedisClient(configuration: configuration, name: "cluster-space")
        )
        return try await withCleanUp {
            try await body(space)
        } cleanUp: {
            try await space.cleanUp()
        }
    }

    /// Deletes the prefix's keys on every master (`SCAN` sees one node's keys only).
    func cleanUp() async throws {
        let map = try await redis.withLink { link throws(RedisError) in try link.clusterSlotMap() }
        for master in map?.masters ?? [] {
            let node = RedisClient(configuration: RedisConfiguration(endpoint: master, tls: configuration.tls), name: "cluster-clean")
            var cursor = "0"
            for _ in 0..<10_000 {
                let reply = try await node.execute(RedisCommand("SCAN", cursor, "MATCH", "\(prefix)*", "COUNT", 1000))
                guard case .array(let parts) = reply, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else { break }
                // One key per command: the keys of one SCAN page lie in many slots.
                if !keys.isEmpty { _ = try await node.execute(keys.compactMap(\.string).map { RedisCommand("UNLINK", $0) }) }
                cursor = next
                if cursor == "0" { break }
            }
        }
    }

    func putTask(_ id: String) async throws {
        _ = try await client.put(Fixtures.task(id))
    }

    /// Queues a request on its task's shard stream; returns the entry id.
    @discardableResult
    func enqueue(task id: String, patch: String, requestId: String, extra: [(String, String)] = []) async throws -> String {
        var arguments: [any RedisArgument] = [shard(ofTask: id).requests, "*"]
        for (field, value) in [("id", id), ("patch", patch), ("request-id", requestId), ("x-sailpoint-experimental", "true")] + extra {
            arguments.append(field)
            arguments.append(value)
        }
        return try await redis.execute(RedisCommand("XADD", arguments: arguments)).string ?? ""
    }

    func reply(task id: String, requestId: String, timeout: Duration = .seconds(20)) async throws -> JSONValue {
        let key = keys.reply(taskId: id, requestId: requestId)
        let found = try await eventually(timeout: timeout) { () async throws -> JSONValue? in
            guard let bytes = try await redis.execute(RedisCommand("GET", key)).bytes else { return nil }
            return try JSONValue(parsing: bytes)
        }
        return try #require(found, "no reply stored at \(key) within \(timeout)")
    }

    func bridgeConfiguration(consumer: String, _ adjust: (inout BridgeConfiguration) -> Void = { _ in }) -> BridgeConfiguration {
        var configuration = BridgeConfiguration(
            redis: configuration,
            prefix: prefix,
            consumer: consumer,
            batchSize: 64,
            blockTimeout: .milliseconds(100),
            claimIdle: .milliseconds(500),
            trimInterval: .milliseconds(200),
            shards: shards,
            pubsub: pubsub
        )
        adjust(&configuration)
        return configuration
    }
}

@Suite(
    "Redis Cluster: the contract on a cluster, with shards",
    .enabled(if: TestCluster.isAvailable, "scripts/test starts the loopback cluster (TASKSTATUS_TEST_CLUSTER)"),
    .timeLimit(.minutes(5))
)
struct ClusterBridgeTests {
    @Test(
        "a request on its shard's stream is answered on reply-to, stored, announced on the task's channel and its shard's change feed; a repeat gets the stored reply; bad input gets 400, a missing task 404",
        arguments: [PubSubMode.classic, .sharded]
    )
    func requestReply(pubsub: PubSubMode) async throws {
        try await ClusterSpace.with(shards: 4, pubsub: pubsub) { space in
            try await space.putTask("t1")
            // The feed holds the creation too; this test counts what updates add.
            _ = try await space.redis.execute(RedisCommand("DEL", space.shard(ofTask: "t1").events))
            let sharded = pubsub == .sharded
            let replies = RedisClient(configuration: space.configuration, name: "replies")
            let replyChannel = "\(space.prefix):replies:{t1}"
            try await replies.subscribe([replyChannel], sharded: sharded)
            let task = RedisClient(configuration: space.configuration, name: "task-channel")
            try await task.subscribe([space.keys.updates("t1")], sharded: sharded)
            let all = RedisClient(configuration: space.configuration, name: "all-channel")
            if !sharded { try await all.subscribe([space.keys.updates]) }
            try await RunningBridge.with(configuration: space.bridgeConfiguration(consumer: "c1")) { _ in
                let patch = #"[{"op":"replace","path":"/percentComplete","value":42}]"#
                try await space.enqueue(task: "t1", patch: patch, requestId: "r1", extra: [("reply-to", replyChannel)])
                let published = try JSONValue(parsing: try await replies.nextMessage().payload)
                #expect(published["status"] == 200)
                #expect(published["body"]?["percentComplete"] == 42)
                let stored = try await space.reply(task: "t1", requestId: "r1")
                #expect(stored["rev"] == 2 && stored["status"] == 200 && stored["body"] == nil)
                let note = try JSONValue(parsing: try await task.nextMessage().payload)
                #expect(note["rev"] == 2)
                if !sharded {
                    #expect(try JSONValue(parsing: try await all.nextMessage().payload) == note)
                }
                let feed = try await space.redis.execute(RedisCommand("XRANGE", space.shard(ofTask: "t1").events, "-", "+"))
                #expect(feed.array?.count == 1, "one change-feed entry on the task's shard")
                // The same request id again: the stored reply, byte for byte, nothing applied twice.
                try await space.enqueue(task: "t1", patch: patch, requestId: "r1", extra: [("reply-to", replyChannel)])
                #expect(try JSONValue(parsing: try await replies.nextMessage().payload) == published)
                try await space.enqueue(task: "t1", patch: "not json", requestId: "bad", extra: [("reply-to", replyChannel)])
                #expect(try JSONValue(parsing: try await replies.nextMessage().payload)["status"] == 400)
                try await space.enqueue(task: "nobody", patch: patch, requestId: "missing")
                #expect(try await space.reply(task: "nobody", requestId: "missing")["status"] == 404)
                // The client's own send finds the shard and the reply channel by itself.
                let sent = try await space.client.send(
                    TaskStatusClient.Request(taskId: "t1", patch: Array(#"[{"op":"replace","path":"/progress","value":"sent"}]"#.utf8)),
                    timeout: .seconds(10)
                )
                #expect(try JSONValue(parsing: sent)["status"] == 200)
                #expect(try await space.client.get("t1")?.rev == 3)
            }
        }
    }

    @Test(
        "on a cluster with shards, tasks created on the stream and over HTTP are listed from every shard's index, merged and counted; a status change moves them"
    )
    func listOnCluster() async throws {
        try await ClusterSpace.with(shards: 4) { space in
            let configuration = space.bridgeConfiguration(consumer: "c1")
            try await RunningBridge.with(configuration: configuration) { bridge in
                let url = try #require(await bridge.baseURL())
                let json = ["X-SailPoint-Experimental": "true", "Content-Type": "application/json"]
                func document(_ k: Int) -> JSONValue {
                    guard case .object(var task) = Fixtures.task("k\(k)") else { return .null }
                    task["created"] = .string(RFC3339.format(seconds: 1_700_000_000 + Int64(k), milliseconds: 0))
                    task["completed"] = nil
                    task["completionStatus"] = nil
                    return .object(task)
                }
                for k in 0..<6 {
                    let created = try await HTTP.request("POST", url + "/task-status", headers: json, body: document(k).serialized())
                    #expect(created.status == 201)
                }
                for k in 6..<12 {
                    let request = "c\(k)"
                    _ = try await space.redis.execute(
                        RedisCommand(
                            "XADD",
                            space.shard(ofTask: "k\(k)").requests,
                            "*",
                            "create",
                            String(decoding: document(k).serialized(), as: UTF8.self),
                            "request-id",
                            request,
                            "x-sailpoint-experimental",
                            "true"
                        )
                    )
                    #expect(try await space.reply(task: "k\(k)", requestId: request)["status"] == 201)
                }
                let shardsUsed = Set((0..<12).map { space.keys.shard(ofTask: "k\($0)", count: 4) })
                #expect(shardsUsed.count > 1, "the tasks spread over shards")
                func list(_ query: String) async throws -> HTTP.Response {
                    try await HTTP.request("GET", url + "/v2026/task-status" + query, headers: ["X-SailPoint-Experimental": "true"])
                }
                let all = try await list("?count=true&limit=5&offset=2")
                #expect(all.status == 200)
                #expect(all.headers["x-total-count"] == "12")
                #expect(all.json?.arrayValue?.compactMap { $0["id"]?.stringValue } == (5...9).reversed().map { "k\($0)" })
                #expect(all.headers["x-last-event-id"]?.split(separator: ",").count == 4, "one position per shard")
                // A watch over every shard's feed: its ids hold one position per shard.
                let port = Int(url.split(separator: ":").last ?? "") ?? 0
                let watcher = try await LiveUpdatesTests.Watcher.open(port, "/v2026/task-status")
                _ = try await watcher.wait(for: "the stream to open") { _ in watcher.status != nil }
                try await Task.sleep(for: .milliseconds(200))
                let done = try await HTTP.request(
                    "PATCH",
                    url + "/task-status/k3",
                    headers: HTTPAPITests.experimental,
                    body: Array(#"[{"op":"replace","path":"/completionStatus","value":"SUCCESS"}]"#.utf8)
                )
                #expect(done.status == 200)
                let running = try await list("?count=true&filters=completionStatus%20isnull")
                #expect(running.headers["x-total-count"] == "11")
                let succeeded = try await list("?filters=completionStatus%20eq%20%22SUCCESS%22")
                #expect(succeeded.json?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["k3"])
                let events = try await watcher.wait(for: "k3's change") { !$0.isEmpty }
                #expect(events.first?.task == "k3" && events.first?.rev == 2)
                #expect(events.first?.id?.split(separator: ",").count == 4)
                await watcher.connection.close()
            }
        }
    }

    @Test("HTTP PATCH and GET and the rate limiter work on a cluster; readiness reports cluster_state, the slots and each shard's reader")
    func httpAndHealth() async throws {
        try await ClusterSpace.with(shards: 3, pubsub: .sharded) { space in
            try await space.putTask("h1")
            // The feed holds the creation too; this test counts what updates add.
            _ = try await space.redis.execute(RedisCommand("DEL", space.shard(ofTask: "h1").events))
            let configuration = space.bridgeConfiguration(consumer: "c1") {
                $0.rateLimit = RateLimitConfiguration(enabled: true, limit: 2, period: .seconds(60), burst: 2)
            }
            try await RunningBridge.with(configuration: configuration) { bridge in
                let url = try #require(await bridge.baseURL())
                var statuses: [Int] = []
                for k in 0..<3 {
                    let body = Array(#"[{"op":"replace","path":"/percentComplete","value":\#(k)}]"#.utf8)
                    statuses.append(try await HTTP.request("PATCH", url + "/task-status/h1", headers: HTTPAPITests.experimental, body: body).status)
                }
                #expect(statuses == [200, 200, 429])
                #expect(try await space.client.get("h1")?.rev == 3)
                let feed = try await space.redis.execute(RedisCommand("XLEN", space.shard(ofTask: "h1").events))
                #expect(feed.int == 2, "HTTP updates go to the task's shard's change feed")
                let ready = try await eventually { () async throws -> JSONValue? in
                    let response = try await HTTP.request("GET", url + "/health/ready")
                    return response.status == 200 ? response.json : nil
                }
                let health = try #require(ready, "readiness never said ready")
                #expect(health["cluster_state"] == "ok")
                #expect(health["slots_covered"] == 16384)
                #expect(health["shards"]?.arrayValue?.count == 3)
                #expect(health["shards"]?.arrayValue?.allSatisfy { $0["reader"] == "reading" } == true)
                // Each shard's gauges, under names of their own.
                let metrics = String(decoding: try await HTTP.request("GET", url + "/metrics").body, as: UTF8.self)
                for k in 0..<3 { #expect(metrics.contains("taskstatus_shard_pending{shard=\"\(k)\"}"), "shard \(k)") }
            }
        }
    }

    @Test("an entry delivered too often goes to its shard's dead-letter stream; replay-dead puts it back on the task's shard and it is applied")
    func deadLettersPerShard() async throws {
        try await ClusterSpace.with(shards: 4) { space in
            try await space.putTask("d1")
            let keys = space.shard(ofTask: "d1")
            let entry = try await space.enqueue(task: "d1", patch: #"[{"op":"replace","path":"/progress","value":"back"}]"#, requestId: "poison")
            try await space.redis.execute(RedisCommand("XGROUP", "CREATE", keys.requests, keys.group, "0", "MKSTREAM"))
            try await space.redis.execute(RedisCommand("XREADGROUP", "GROUP", keys.group, "crashed", "COUNT", 10, "STREAMS", keys.requests, ">"))
            try await space.redis.execute(RedisCommand("XCLAIM", keys.requests, keys.group, "crashed", 0, entry, "RETRYCOUNT", 5))
            try await RunningBridge.with(configuration: space.bridgeConfiguration(consumer: "c1")) { _ in
                #expect(try await space.reply(task: "d1", requestId: "poison")["status"] == 500)
                let letters = try await space.client.deadLetters(count: 10)
                #expect(letters.map(\.stream) == [keys.dead])
                let letter = try #require(letters.first)
                _ = try await space.client.replay(letter)
                let applied = try await eventually { () async throws -> Bool? in
                    try await space.client.get("d1")?.rev == 2 ? true : nil
                }
                #expect(applied == true)
                #expect(try await space.client.deadLetters(count: 10).isEmpty)
            }
        }
    }

    @Test(
        "a drain of 20,000 requests over 16 shards and two bridges, with --min-replicas 1: every reply right, every revision 1 + its successes, every task's last update last",
        arguments: [PubSubMode.sharded]
    )
    func drain(pubsub: PubSubMode) async throws {
        try await ClusterSpace.with(shards: 16, pubsub: pubsub) { space in
            let taskCount = 400
            let requestCount = 20_000
            _ = try await space.client.put((0..<taskCount).map { Fixtures.task("d\($0)") })
            var rng = SystemRandomNumberGenerator()
            var expected: [(task: Int, status: Int)] = []
            var lastValue = [Int](repeating: -1, count: taskCount)
            var successes = [Int](repeating: 0, count: taskCount)
            var pipeline = RedisPipeline()
            var batches: [RedisPipeline] = []
            for k in 0..<requestCount {
                let task = Int.random(in: 0..<taskCount, using: &rng)
                let invalid = k % 20 == 7
                let patch =
                    invalid
                    ? #"[{"op":"replace","path":"/percentComplete","value":"not a number"}]"#
                    : #"[{"op":"replace","path":"/percentComplete","value":\#(k % 101)},{"op":"replace","path":"/progress","value":"r\#(k)"}]"#
                expected.append((task, invalid ? 400 : 200))
                if !invalid {
                    lastValue[task] = k
                    successes[task] += 1
                }
                pipeline.begin("XADD")
                pipeline.add(space.shard(ofTask: "d\(task)").requests)
                for word in ["*", "id", "d\(task)", "patch", patch, "request-id", "r\(k)", "x-sailpoint-experimental", "true"] { pipeline.add(word) }
                if pipeline.count == 2000 {
                    batches.append(pipeline)
                    pipeline = RedisPipeline()
                }
            }
            if !pipeline.isEmpty { batches.append(pipeline) }
            let configure: (inout BridgeConfiguration) -> Void = {
                $0.batchSize = 128
                $0.minReplicas = 1
            }
            try await RunningBridge.with(configuration: space.bridgeConfiguration(consumer: "one", configure)) { _ in
                try await RunningBridge.with(configuration: space.bridgeConfiguration(consumer: "two", configure)) { _ in
                    // Queued once the two bridges have shared out the shards.
                    let split = try await eventually(timeout: .seconds(30), every: .milliseconds(100)) { () async throws -> Bool? in
                        let holders = try await space.redis.execute((0..<space.shards).map { RedisCommand("GET", "\(space.prefix):lease:{s\($0)}") })
                        return Set(holders.compactMap(\.string)) == ["one", "two"] && holders.allSatisfy { $0.string != nil } ? true : nil
                    }
                    #expect(split == true, "the bridges did not share the shards out")
                    for batch in batches { #expect(try await space.redis.executeForErrors(batch).isEmpty) }
                    let done = try await eventually(timeout: .seconds(240), every: .milliseconds(250)) { () async throws -> Bool? in
                        var open: Int64 = 0
                        for k in 0..<space.shards {
                            let groups = try await space.redis.execute(RedisCommand("XINFO", "GROUPS", space.shard(k).requests))
                            for group in groups.array ?? [] {
                                let info = group.map
                                open += (info["pending"]?.int ?? 1) + (info["lag"]?.int ?? 1)
                            }
                            if groups.array?.isEmpty ?? true { open += 1 }
                        }
                        return open == 0 ? true : nil
                    }
                    #expect(done == true, "the bridges did not drain the shards")
                    // Both bridges read: the shards were shared, one reader per shard at a time.
                    var readers = Set<String>()
                    for k in 0..<space.shards {
                        let consumers = try await space.redis.execute(RedisCommand("XINFO", "CONSUMERS", space.shard(k).requests, space.keys.group))
                        for consumer in consumers.array ?? [] { readers.insert(consumer.map["name"]?.string ?? "") }
                    }
                    #expect(readers == ["one", "two"])
                }
            }
            var wrong: [String] = []
            for start in stride(from: 0, to: requestCount, by: 2000) {
                var gets = RedisPipeline()
                for k in start..<min(requestCount, start + 2000) {
                    gets.begin("GET")
                    gets.add(space.keys.reply(taskId: "d\(expected[k].task)", requestId: "r\(k)"))
                }
                let replies = try await space.redis.execute(gets)
                for k in start..<min(requestCount, start + 2000) {
                    let reply = replies[k - start].bytes.flatMap { try? JSONValue(parsing: Array($0)) }
                    let status: Int? = if case .integer(let n)? = reply?["status"] { Int(n) } else { nil }
                    if status != expected[k].status, wrong.count < 5 {
                        wrong.append("r\(k): \(status.map { String($0) } ?? "no reply"), not \(expected[k].status)")
                    }
                }
            }
            for task in 0..<taskCount {
                let record = try await space.client.get("d\(task)")
                if record?.rev != Int64(1 + successes[task]), wrong.count < 10 {
                    wrong.append("d\(task): _rev \(record?.rev ?? 0), not \(1 + successes[task])")
                }
                if lastValue[task] >= 0, let json = record?.json, let document = try? JSONValue(parsing: json),
                    document["progress"]?.stringValue != "r\(lastValue[task])", wrong.count < 15
                {
                    wrong.append("d\(task): progress \(document["progress"]?.stringValue ?? "-"), not r\(lastValue[task]) (order)")
                }
            }
            #expect(wrong.isEmpty, "\(wrong)")
            // No single key took every update: each shard's change feed has a share. (An entry
            // may be announced twice, after a redelivery: a change-feed reader drops a repeated
            // id and rev, contract section 4.)
            var feeds: [Int] = []
            var updates = Set<String>()
            for k in 0..<space.shards {
                let entries = try await space.redis.execute(RedisCommand("XRANGE", space.shard(k).events, "-", "+")).array ?? []
                feeds.append(entries.count)
                for entry in entries {
                    let fields = Dictionary(
                        (entry.array?[1].pairs ?? []).map { (String(decoding: $0.field, as: UTF8.self), String(decoding: $0.value, as: UTF8.self)) }
                    ) { a, _ in a }
                    // Revision 1 is each task's creation (put announces it too).
                    if fields["rev"] != "1" { updates.insert("\(fields["id"] ?? "")@\(fields["rev"] ?? "")") }
                }
            }
            #expect(updates.count == successes.reduce(0, +))
            #expect(feeds.allSatisfy { $0 > 0 }, "\(feeds)")
        }
    }
}
