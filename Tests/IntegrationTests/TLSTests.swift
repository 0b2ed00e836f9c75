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
import TestFixtures
import Testing

/// TLS to Redis: TLS-only servers (`port 0`, `tls-auth-clients yes`) of the tests' own, with the
/// certificates scripts/test makes; every refusal named.
@Suite("TLS to Redis", .enabled(if: TestTLS.isAvailable, "TASKSTATUS_TEST_TLS is not set; run scripts/test"), .timeLimit(.minutes(3)))
struct TLSTests {
    /// A TLS-only server presenting `certificate`, for the length of `body`.
    private func withServer<T>(presenting certificate: String = "redis", _ body: (PrivateRedis) async throws -> T) async throws -> T {
        let server = try PrivateRedis(tls: certificate)
        return try await withCleanUp {
            // Up once its Unix socket answers.
            let admin = RedisClient(configuration: try RedisConfiguration(url: server.adminURL), name: "tls-admin")
            _ = await eventually(timeout: .seconds(5)) { try? await admin.execute(RedisCommand("PING")) }
            return try await body(server)
        } cleanUp: {
            await server.stop()
        }
    }

    /// Connects once with these settings; the error, if any.
    private func connect(_ url: String, tls: RedisTLSConfiguration?, connectTimeout: Duration = .seconds(5)) async -> RedisError? {
        var configuration: RedisConfiguration
        do {
            configuration = try TestTLS.configuration(url, tls: tls)
        } catch {
            return error as? RedisError
        }
        configuration.connectTimeout = connectTimeout
        // A group of its own: a refusal here must not cut the other tests' connections.
        let client = RedisClient(configuration: configuration, name: "tls-probe", losses: ConnectionLosses())
        do {
            let pong = try await client.execute(RedisCommand("PING"))
            #expect(pong == .status("PONG"))
            return nil
        } catch {
            return error
        }
    }

    @Test("verified by name (localhost, a DNS entry) and by address (127.0.0.1, an IP entry), in TLS 1.2 or later")
    func verifiedNames() async throws {
        try await withServer { server in
            #expect(await connect("rediss://localhost:\(server.port)", tls: TestTLS.settings()) == nil)
            #expect(await connect("rediss://127.0.0.1:\(server.port)", tls: TestTLS.settings()) == nil)
            let connection = try RedisConnection(configuration: try TestTLS.configuration("rediss://127.0.0.1:\(server.port)"))
            let agreed = try #require(connection.tlsAgreed)
            #expect(agreed.hasPrefix("TLSv1.2") || agreed.hasPrefix("TLSv1.3"), "\(agreed)")
        }
    }

    @Test("a pipeline larger than the TLS buffers goes out whole, and replies spanning many TLS records come back whole")
    func largePipelines() async throws {
        try await withServer { server in
            let connection = try RedisConnection(configuration: try TestTLS.configuration("rediss://localhost:\(server.port)"))
            // 4 values of 1 MiB (each 64 TLS records, the pipeline 16 times the BIO pair's buffer).
            let values = (0..<4).map { k in [UInt8]((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ k) }) }
            var commands = values.enumerated().map { RedisCommand("SET", "large-\($0.offset)", $0.element) }
            commands += values.indices.map { RedisCommand("GET", "large-\($0)") }
            let replies = try connection.execute(commands)
            #expect(replies.prefix(4).allSatisfy { $0 == .status("OK") })
            for (k, value) in values.enumerated() { #expect(replies[4 + k].bytes == value, "value \(k) came back changed") }
            _ = try connection.execute([RedisCommand("DEL", "large-0", "large-1", "large-2", "large-3")])
        }
    }

    @Test(
        "each refusal is a certificate error that names its reason",
        arguments: [
            ("expired", "localhost", "client", "certificate has expired"),
            ("wrong-name", "localhost", "client", "hostname mismatch"),
            ("wrong-name", "127.0.0.1", "client", "IP address mismatch"),
            ("other-redis", "localhost", "client", "unable to get local issuer certificate"),
            ("redis", "localhost", "other-client", "refused our client certificate"),
            ("redis", "localhost", nil, "refused our client certificate"),
        ] as [(String, String, String?, String)]
    )
    func refusals(certificate: String, host: String, client: String?, reason: String) async throws {
        try await withServer(presenting: certificate) { server in
            let error = try #require(await connect("rediss://\(host):\(server.port)", tls: TestTLS.settings(client: client)))
            #expect(error.code == .certificateRejected, "\(error)")
            #expect(error.message.contains(reason), "\(error.message)")
        }
    }

    @Test("a name the certificate holds, given with --redis-tls-server-name, verifies a node reached by another address")
    func serverNameOverride() async throws {
        try await withServer(presenting: "wrong-name") { server in
            #expect(await connect("rediss://127.0.0.1:\(server.port)", tls: TestTLS.settings(serverName: "wrong.example")) == nil)
        }
    }

    @Test("--redis-tls-insecure connects to a server whose certificate nobody vouches for")
    func insecure() async throws {
        try await withServer(presenting: "other-redis") { server in
            var tls = TestTLS.settings()
            tls.verifiesPeer = false
            #expect(await connect("rediss://localhost:\(server.port)", tls: tls) == nil)
        }
    }

    @Test("plain TCP to a TLS port, and TLS to a plain port, fail plainly: each says which scheme to use")
    func protocolMismatch() async throws {
        try await withServer { server in
            let plain = try #require(await connect("redis://127.0.0.1:\(server.port)", tls: nil))
            #expect(plain.isConnectionFailure)
            #expect(plain.message.contains("rediss://"), "\(plain.message)")
        }
        let plainServer = try PrivateRedis(tcp: true)
        let error = try #require(await connect("rediss://127.0.0.1:\(plainServer.port)", tls: TestTLS.settings(), connectTimeout: .seconds(1)))
        await plainServer.stop()
        #expect(error.isConnectionFailure)
        #expect(error.code != .certificateRejected)
        #expect(error.message.contains("redis://"), "\(error.message)")
    }

    @Test(
        "a bridge on a TLS-only server answers on the stream and over HTTP, with rate limits, and reports ready: every connection in TLS"
    )
    func bridgeOverTLS() async throws {
        try await withServer { server in
            let configuration = try TestTLS.configuration("rediss://localhost:\(server.port)")
            try await TestSpace.with(on: configuration) { space in
                try await space.putTask("t1")
                let replies = "\(space.prefix):replies"
                let listener = try await ReplicationTests.Listener(space, [replies])
                try await RunningBridge.with(
                    space,
                    configure: {
                        $0.auth = Tokens.configuration
                        $0.rateLimit = RateLimitConfiguration(enabled: true, limit: 100, period: .seconds(10), burst: 100)
                    }
                ) { bridge in
                    let base = try #require(await bridge.baseURL())
                    let patch = #"[{"op":"replace","path":"/percentComplete","value":40}]"#
                    try await space.enqueue(
                        task: "t1",
                        patch: patch,
                        requestId: "over-stream",
                        extra: [("reply-to", replies), ("authorization", "Bearer " + (try await Tokens.sign(clientId: "tls-client")))]
                    )
                    #expect(try await space.reply(task: "t1", requestId: "over-stream")["status"] == 200)
                    #expect(await listener.awaitCount(1, on: replies, within: .seconds(10)) == 1)
                    var headers = HTTPAPITests.experimental
                    headers["Authorization"] = "Bearer " + (try await Tokens.sign(clientId: "tls-client"))
                    let response = try await HTTP.request(
                        "PATCH",
                        base + "/task-status/t1",
                        headers: headers,
                        body: Array(#"[{"op":"replace","path":"/percentComplete","value":60}]"#.utf8)
                    )
                    #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
                    let ready = try await HTTP.request("GET", base + "/health/ready")
                    #expect(ready.status == 200, "\(ready.json?.jsonText ?? "")")
                    // The server has no plain TCP port: every client it has came over TLS or
                    // over the tests' Unix socket.
                    let admin = RedisClient(configuration: try RedisConfiguration(url: server.adminURL), name: "tls-admin")
                    let clients = try await admin.execute(RedisCommand("CLIENT", "LIST")).string ?? ""
                    let tcp = clients.split(separator: "\n").filter { $0.contains("addr=127.0.0.1:") }
                    #expect(tcp.count >= 4, "the bridge's connections: \(clients)")
                }
            }
        }
    }

    @Test(
        "after the start, a certificate refused on reconnect is logged and retried: not ready, saying why; back with a good one, the bridge resumes"
    )
    func refusedAfterStart() async throws {
        try await withServer { server in
            let configuration = try TestTLS.configuration("rediss://localhost:\(server.port)")
            try await TestSpace.with(on: configuration) { space in
                try await space.putTask("t1")
                try await RunningBridge.with(space) { bridge in
                    let base = try #require(await bridge.baseURL())
                    let ready = await eventually { try? await HTTP.request("GET", base + "/health/ready").status == 200 ? true : nil }
                    #expect(ready == true)
                    try await server.restart(presenting: "expired")
                    let refused = await eventually(timeout: .seconds(20)) { () async -> String? in
                        guard let response = try? await HTTP.request("GET", base + "/health/ready"), response.status == 503 else { return nil }
                        let text = response.json?.jsonText ?? ""
                        return text.contains("certificate has expired") ? text : nil
                    }
                    #expect(refused != nil, "readiness should say the certificate expired")
                    try await server.restart(presenting: "redis")
                    // The server came back empty (no persistence here): the task again.
                    _ = await eventually(timeout: .seconds(10)) { try? await space.putTask("t1") }
                    let back = await eventually(timeout: .seconds(20)) {
                        try? await HTTP.request("GET", base + "/health/ready").status == 200 ? true : nil
                    }
                    #expect(back == true)
                    try await space.enqueue(task: "t1", patch: "[]", requestId: "after")
                    #expect(try await space.reply(task: "t1", requestId: "after", timeout: .seconds(20))["status"] == 200)
                }
            }
        }
    }

    @Test(
        "serve stops at start, non-zero, naming the reason, when a certificate is refused; a protocol mismatch only keeps it not ready",
        .enabled(if: BridgeProcess.isAvailable, "the task-status-bridge executable is not built")
    )
    func refusedAtStart() async throws {
        try await withServer(presenting: "expired") { server in
            let process = try BridgeProcess(
                [
                    "serve", "--no-auth", "--http-port", "0", "--redis-url", "rediss://localhost:\(server.port)", "--redis-tls-ca-file",
                    TestTLS.path("ca.crt"), "--redis-tls-cert-file", TestTLS.path("client.crt"), "--redis-tls-key-file", TestTLS.path("client.key"),
                ]
            )
            let status = await process.waitForExit(timeout: .seconds(20))
            #expect(status != nil && status != 0, "the bridge should stop: \(process.output)")
            #expect(process.output.contains("certificate has expired"), "\(process.output)")
        }
        try await withServer { server in
            // The plain scheme to a TLS port: a mismatch to fix, but not a certificate; it runs.
            let port = PrivateRedis.freePort()
            let process = try BridgeProcess([
                "serve", "--no-auth", "--http-port", String(port), "--redis-url", "redis://127.0.0.1:\(server.port)", "--log-level", "error",
            ])
            let reasons = await eventually(timeout: .seconds(20)) { () async -> String? in
                guard let response = try? await HTTP.request("GET", "http://127.0.0.1:\(port)/health/ready"), response.status == 503 else {
                    return nil
                }
                return response.json?["reasons"]?.jsonText
            }
            #expect(reasons?.contains("rediss://") == true, "\(reasons ?? process.output)")
            process.kill(SIGTERM)
            #expect(await process.waitForExit() == 0)
        }
    }

    @Test(
        "put, get, send, replay-dead and loadtest all speak TLS",
        .enabled(if: BridgeProcess.isAvailable, "the task-status-bridge executable is not built")
    )
    func everyCommand() async throws {
        try await withServer { server in
            let configuration = try TestTLS.configuration("rediss://localhost:\(server.port)")
            try await TestSpace.with(on: configuration) { space in
                let flags = [
                    "--redis-url", "rediss://localhost:\(server.port)", "--prefix", space.prefix, "--redis-tls-ca-file", TestTLS.path("ca.crt"),
                    "--redis-tls-cert-file", TestTLS.path("client.crt"), "--redis-tls-key-file", TestTLS.path("client.key"),
                ]
                func run(_ arguments: [String], input: String? = nil) async throws -> (status: Int32?, output: String) {
                    let process = try BridgeProcess(arguments + flags)
                    let status = await process.waitForExit(timeout: .seconds(60))
                    return (status, process.output)
                }
                let document = Fixtures.task("cli-1").jsonText
                let file = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString).json")
                try document.write(to: file, atomically: true, encoding: .utf8)
                defer { try? FileManager.default.removeItem(at: file) }
                let put = try await run(["put", file.path])
                #expect(put.status == 0, "\(put.output)")
                let get = try await run(["get", "cli-1"])
                #expect(get.status == 0 && get.output.contains("\"id\""), "\(get.output)")
                try await RunningBridge.with(space) { _ in
                    let send = try await run(["send", "cli-1", #"[{"op":"replace","path":"/percentComplete","value":10}]"#])
                    #expect(send.status == 0 && send.output.contains("200"), "\(send.output)")
                    let replay = try await run(["replay-dead"])
                    #expect(replay.status == 0, "\(replay.output)")
                    let load = try await run(["loadtest", "--rate", "50", "--duration", "1", "--quiet"])
                    #expect(load.status == 0, "\(load.output)")
                }
            }
        }
    }

    @Test(
        "Sentinel over TLS: TLS data nodes (tls-replication) behind TLS sentinels, or plain sentinels with --sentinel-tls false; the bridge follows a failover",
        arguments: [true, false]
    )
    func sentinel(tlsSentinels: Bool) async throws {
        let master = try PrivateRedis(tls: "redis")
        let replica = try PrivateRedis(["--replicaof", "127.0.0.1", String(master.port), "--tls-replication", "yes"], tls: "redis")
        let name = "tlsmaster"
        let sentinels = try (0..<3).map { _ in
            try PrivateSentinel(monitoring: name, masterPort: master.port, tls: tlsSentinels, tlsNodes: true)
        }
        // (No deferred stop: the servers' deinit kills them when the test throws.)
        for sentinel in sentinels {
            let known = await eventually(timeout: .seconds(30)) { (await sentinel.ask("SENTINEL", "REPLICAS", name))?.array?.count == 1 ? true : nil }
            #expect(known == true, "\(sentinel.log)")
        }
        var configuration = try TestTLS.configuration("rediss://127.0.0.1:\(master.port)")
        configuration.sentinel = SentinelConfiguration(nodes: sentinels.map(\.node), masterName: name, tls: tlsSentinels ? TestTLS.settings() : nil)
        try await TestSpace.with(on: configuration) { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                try await space.enqueue(task: "t1", patch: "[]", requestId: "before")
                #expect(try await space.reply(task: "t1", requestId: "before")["status"] == 200)
                #expect(try await HTTP.request("GET", base + "/health/ready").status == 200)
                #expect(SentinelRouter.shared(for: try #require(configuration.sentinel)).runningWatchers == 3, "a watcher per sentinel")
                // The replica has the task (it follows the master over TLS) before it is promoted.
                let onReplica = RedisClient(configuration: try RedisConfiguration(url: replica.adminURL), name: "tls-replica")
                let synced = await eventually(timeout: .seconds(20)) { () async -> Bool? in
                    (try? await onReplica.execute(RedisCommand("HGET", space.keys.task("t1"), "_rev")))?.string == "2" ? true : nil
                }
                #expect(synced == true, "the replica did not follow the master over TLS")

                #expect((await sentinels[0].ask("SENTINEL", "FAILOVER", name))?.string == "OK")
                let promoted = await eventually(timeout: .seconds(30)) { () async -> Bool? in
                    guard let parts = (await sentinels[0].ask("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name))?.array, parts.count == 2 else {
                        return nil
                    }
                    return parts[1].string == String(replica.port) ? true : nil
                }
                #expect(promoted == true)
                // Until the old master follows the new one, the producer may still reach it; the
                // request is sent again, under the same id, until the new master answers it.
                // (Read here, not with space.reply, which records every attempt that times out.)
                let key = space.keys.reply(taskId: "t1", requestId: "after")
                var status: JSONValue?
                for _ in 0..<50 where status != 200 {
                    _ = try? await space.enqueue(task: "t1", patch: "[]", requestId: "after")
                    status = await eventually(timeout: .seconds(2)) { () async -> JSONValue? in
                        guard let bytes = (try? await space.redis.execute(RedisCommand("GET", key)))?.bytes else { return nil }
                        return (try? JSONValue(parsing: bytes))?["status"]
                    }
                }
                #expect(status == 200)
            }
        }
        // The watchers (a thread per sentinel) ended with the service.
        let router = SentinelRouter.shared(for: try #require(configuration.sentinel))
        #expect(
            await eventually(timeout: .seconds(5)) { router.runningWatchers == 0 ? true : nil } == true,
            "\(router.runningWatchers) watchers left"
        )
        for sentinel in sentinels { #expect(!sentinel.log.contains("-failover-abort"), "\(sentinel.log)") }
        await master.stop()
        await replica.stop()
    }

    @Test(
        "Redis Cluster over TLS (tls-cluster yes, nodes announced by IP address): requests on four shards are answered, HTTP too, and readiness reports the cluster",
        .enabled(if: TestCluster.isTLSAvailable, "scripts/test starts the TLS-only cluster (TASKSTATUS_TEST_TLS_CLUSTER)")
    )
    func cluster() async throws {
        try await ClusterSpace.with(shards: 4, pubsub: .sharded, tls: true) { space in
            let tasks = (0..<12).map { "tls-\($0)" }
            for task in tasks { try await space.putTask(task) }
            try await RunningBridge.with(configuration: space.bridgeConfiguration(consumer: "tls")) { bridge in
                let url = try #require(await bridge.baseURL())
                for task in tasks { try await space.enqueue(task: task, patch: "[]", requestId: "r-\(task)") }
                for task in tasks { #expect(try await space.reply(task: task, requestId: "r-\(task)")["status"] == 200, "\(task)") }
                let body = Array(#"[{"op":"replace","path":"/percentComplete","value":5}]"#.utf8)
                #expect(try await HTTP.request("PATCH", url + "/task-status/tls-0", headers: HTTPAPITests.experimental, body: body).status == 200)
                let ready = await eventually { () async -> JSONValue? in
                    guard let response = try? await HTTP.request("GET", url + "/health/ready"), response.status == 200 else { return nil }
                    return response.json
                }
                #expect(ready?["cluster_state"] == "ok")
                #expect(ready?["slots_covered"] == 16384)
            }
            // The slot map's masters, all reached in TLS, verified by their IP addresses.
            let map = try #require(try await space.redis.withLink { link throws(RedisError) in try link.clusterSlotMap() })
            #expect(map.masters.count == 3)
        }
    }
}
