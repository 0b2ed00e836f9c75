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

/// The repository's deployment files, and the topology of docker-compose.yml run as local
/// processes (no Docker engine runs where the tests do).
enum Deployment {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let python = ProcessInfo.processInfo.environment["TASKSTATUS_TEST_PYTHON"]
    static let schema = ProcessInfo.processInfo.environment["TASKSTATUS_COMPOSE_SCHEMA"]
    static var canCheckCompose: Bool {
        guard let python, let schema else { return false }
        return FileManager.default.isExecutableFile(atPath: python) && FileManager.default.fileExists(atPath: schema)
    }

    /// Runs a program to its end (bounded); its exit status and output.
    static func run(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        _ = await eventually(timeout: .seconds(30)) { process.isRunning ? nil : true }
        return (process.isRunning ? -1 : process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Runs deploy/make-secrets into a new folder; its path.
    static func makeSecrets() async throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tsb-secrets-\(UUID().uuidString.prefix(8))")
        let result = try await run("/bin/bash", [root.appendingPathComponent("deploy/make-secrets").path, folder.path])
        #expect(result.status == 0, "\(result.output)")
        return folder
    }
}

@Suite("Deployment")
struct DeploymentTests {
    @Test(
        "docker-compose.yml follows the Compose schema and the topology it promises; the Dockerfile is multi-stage, non-root, with a health check",
        .enabled(if: Deployment.canCheckCompose, "scripts/test provides PyYAML, jsonschema and the Compose schema"),
        .enabled(if: BridgeProcess.isAvailable, "the task-status-bridge executable is not built")
    )
    func composeFile() async throws {
        let result = try await Deployment.run(
            Deployment.python!,
            [
                Deployment.root.appendingPathComponent("Tests/IntegrationTests/Deploy/check_deployment.py").path, Deployment.root.path,
                Deployment.schema!, BridgeProcess.executable.path,
            ]
        )
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.hasSuffix("ok\n"))
    }

    @Test(
        "the compose topology as local processes: Redis with the ACL file and AOF, two bridges as user bridge, a producer that can only queue and listen",
        .enabled(if: PrivateRedis.isAvailable, "redis-server is not installed"),
        .enabled(if: BridgeProcess.isAvailable, "the task-status-bridge executable is not built"),
        .timeLimit(.minutes(2))
    )
    func topology() async throws {
        let secrets = try await Deployment.makeSecrets()
        defer { try? FileManager.default.removeItem(at: secrets) }
        func secret(_ name: String) throws -> String {
            try String(contentsOf: secrets.appendingPathComponent(name), encoding: .utf8).trimmingCharacters(in: .newlines)
        }
        // Running it again keeps the secrets it made.
        let password = try secret("bridge_redis_password")
        _ = try await Deployment.run("/bin/bash", [Deployment.root.appendingPathComponent("deploy/make-secrets").path, secrets.path])
        #expect(try secret("bridge_redis_password") == password)

        let redis = try PrivateRedis(["--aclfile", secrets.appendingPathComponent("users.acl").path, "--appendonly", "yes"])
        let socket = redis.socket
        var bridgeUser = try RedisConfiguration(url: "unix://bridge@\(socket)")
        bridgeUser.password = try secret("bridge_redis_password")
        var producerUser = try RedisConfiguration(url: "unix://producer@\(socket)")
        producerUser.password = try secret("producer_redis_password")

        // Tasks are stored with the bridge's user (the put command).
        let client = TaskStatusClient(configuration: bridgeUser, prefix: "taskstatus")
        for n in 0..<4 { _ = try await client.put(Fixtures.task("topo-\(n)")) }

        let bridges = try ["one", "two"].map { name in
            try BridgeProcess(
                [
                    "serve", "--redis-url", "unix://bridge@\(socket)", "--http-port", "0", "--consumer", name, "--claim-idle-ms", "300",
                    "--block-ms", "100", "--log-level", "warning",
                ],
                environment: [
                    "TASKSTATUS_REDIS_PASSWORD_FILE": secrets.appendingPathComponent("bridge_redis_password").path,
                    "TASKSTATUS_JWT_SECRET_FILE": secrets.appendingPathComponent("jwt_secret").path,
                ]
            )
        }
        let token = try await Tokens.sign(secret: Array(try secret("jwt_secret").utf8))

        // The producer queues requests and listens for replies and notifications.
        let listener = RedisClient(configuration: producerUser, name: "producer-listener")
        try await listener.subscribe(["taskstatus:replies:topology", "taskstatus:updates"])
        let producer = RedisClient(configuration: producerUser, name: "producer")
        let count = 60
        var batch: [RedisCommand] = []
        for n in 0..<count {
            batch.append(
                RedisCommand(
                    "XADD",
                    "taskstatus:requests",
                    "*",
                    "id",
                    "topo-\(n % 4)",
                    "patch",
                    #"[{"op":"replace","path":"/percentComplete","value":\#(n)}]"#,
                    "reply-to",
                    "taskstatus:replies:topology",
                    "request-id",
                    "topo-\(n)",
                    "x-sailpoint-experimental",
                    "true",
                    "authorization",
                    "Bearer \(token)"
                )
            )
        }
        for reply in try await producer.execute(batch) { #expect(reply.string != nil, "XADD as producer: \(reply)") }
        var replies = 0
        var notifications = 0
        for _ in 0..<(2 * count) {
            let message = try await listener.nextMessage()
            if message.channel == "taskstatus:updates" {
                notifications += 1
            } else {
                let reply = try JSONValue(parsing: message.payload)
                #expect(reply["status"] == 200, "\(reply.jsonText)")
                replies += 1
            }
        }
        #expect(replies == count)
        #expect(notifications == count)
        #expect(try await client.get("topo-0")?.rev == Int64(1 + count / 4))

        // Both bridges joined the one consumer group.
        let consumers = try await RedisClient(configuration: bridgeUser, name: "check").execute(
            RedisCommand("XINFO", "CONSUMERS", "taskstatus:requests", "taskstatus-bridge")
        )
        #expect(Set((consumers.array ?? []).compactMap { $0.map["name"]?.string }) == ["one", "two"])

        // The producer can do nothing else: read tasks or replies, write other keys, listen elsewhere.
        for command in [
            RedisCommand("HGETALL", "taskstatus:task:{topo-0}"), RedisCommand("GET", "taskstatus:reply:{topo-0}:topo-0"),
            RedisCommand("XADD", "taskstatus:events", "*", "forged", "1"), RedisCommand("DEL", "taskstatus:requests"),
            RedisCommand("XRANGE", "taskstatus:requests", "-", "+"), RedisCommand("PUBLISH", "taskstatus:updates", "forged"),
        ] {
            do {
                let reply = try await producer.execute(command)
                Issue.record("the producer could run \(command): \(reply)")
            } catch {
                #expect(error.message.hasPrefix("NOPERM"), "\(command): \(error)")
            }
        }
        await #expect(throws: RedisError.self) {
            try await RedisClient(configuration: producerUser, name: "spy").subscribe(["taskstatus:other"])
        }

        // Stopped gracefully, neither bridge met a permission error in any of its commands.
        for bridge in bridges { bridge.kill(SIGTERM) }
        for bridge in bridges {
            #expect(await bridge.waitForExit() == 0)
            #expect(!bridge.output.contains("NOPERM"), "\(bridge.output)")
        }
        await redis.stop()
    }

    @Test(
        "docker-compose.tls.yml as local processes: Redis in TLS only with make-secrets' certificates and the ACL file, the bridge on rediss:// with its client certificate, a producer in TLS",
        .enabled(if: PrivateRedis.isAvailable, "redis-server is not installed"),
        .enabled(if: BridgeProcess.isAvailable, "the task-status-bridge executable is not built"),
        .timeLimit(.minutes(2))
    )
    func tlsOverride() async throws {
        let secrets = try await Deployment.makeSecrets()
        defer { try? FileManager.default.removeItem(at: secrets) }
        func path(_ name: String) -> String { secrets.appendingPathComponent(name).path }
        func secret(_ name: String) throws -> String {
            try String(contentsOf: secrets.appendingPathComponent(name), encoding: .utf8).trimmingCharacters(in: .newlines)
        }
        // As docker-compose.tls.yml starts it (the secrets at their local paths).
        let port = PrivateRedis.freePort()
        let redis = try PrivateRedis([
            "--port", "0", "--tls-port", String(port), "--tls-cert-file", path("tls/redis.crt"), "--tls-key-file", path("tls/redis.key"),
            "--tls-ca-cert-file", path("tls/ca.crt"), "--tls-auth-clients", "yes", "--aclfile", path("users.acl"), "--appendonly", "yes",
        ])
        let tls = RedisTLSConfiguration(caFile: path("tls/ca.crt"), certificateFile: path("tls/client.crt"), keyFile: path("tls/client.key"))
        var bridgeUser = try RedisConfiguration(url: "rediss://bridge@localhost:\(port)/0")
        bridgeUser.password = try secret("bridge_redis_password")
        bridgeUser.tls = tls
        var producerUser = try RedisConfiguration(url: "rediss://producer@localhost:\(port)/0")
        producerUser.password = try secret("producer_redis_password")
        producerUser.tls = tls
        let tasks = TaskStatusClient(configuration: bridgeUser, prefix: "taskstatus")
        _ = try await eventually(timeout: .seconds(10)) { try? await tasks.put(Fixtures.task("tls-0")) }

        let bridge = try BridgeProcess(
            ["serve", "--http-port", "0", "--block-ms", "100", "--log-level", "warning"],
            environment: [
                "REDIS_URL": "rediss://bridge@localhost:\(port)/0",
                "TASKSTATUS_REDIS_PASSWORD_FILE": path("bridge_redis_password"), "TASKSTATUS_JWT_SECRET_FILE": path("jwt_secret"),
                "TASKSTATUS_REDIS_TLS_CA_FILE": path("tls/ca.crt"), "TASKSTATUS_REDIS_TLS_CERT_FILE": path("tls/client.crt"),
                "TASKSTATUS_REDIS_TLS_KEY_FILE": path("tls/client.key"),
            ]
        )
        let token = try await Tokens.sign(secret: Array(try secret("jwt_secret").utf8))
        let producer = TaskStatusClient(configuration: producerUser, prefix: "taskstatus")
        let reply = try JSONValue(
            parsing: try await producer.send(
                TaskStatusClient.Request(
                    taskId: "tls-0",
                    patch: Array(#"[{"op":"replace","path":"/percentComplete","value":50}]"#.utf8),
                    authorization: "Bearer \(token)"
                ),
                timeout: .seconds(20)
            )
        )
        #expect(reply["status"] == 200, "\(reply.jsonText)")
        bridge.kill(SIGTERM)
        #expect(await bridge.waitForExit() == 0)
        #expect(!bridge.output.contains("NOPERM"), "\(bridge.output)")
        await redis.stop()
    }

    @Test(
        "the sentinel profile as local processes: replicas and sentinels authenticate as the ACL file's users, the bridge goes through the sentinels with --min-replicas 1, follows a SENTINEL FAILOVER and meets no NOPERM",
        .enabled(if: PrivateRedis.isAvailable, "redis-server is not installed"),
        .enabled(if: BridgeProcess.isAvailable, "the task-status-bridge executable is not built"),
        .timeLimit(.minutes(2))
    )
    func sentinelTopology() async throws {
        let secrets = try await Deployment.makeSecrets()
        defer { try? FileManager.default.removeItem(at: secrets) }
        func secret(_ name: String) throws -> String {
            try String(contentsOf: secrets.appendingPathComponent(name), encoding: .utf8).trimmingCharacters(in: .newlines)
        }
        // As in docker-compose.yml: every data node has the ACL file and replication.conf (a failover
        // may make any of them a replica), the replicas follow the first.
        let dataArguments = [
            "--aclfile", secrets.appendingPathComponent("users.acl").path, "--include", secrets.appendingPathComponent("replication.conf").path,
        ]
        let master = try PrivateRedis(dataArguments, tcp: true)
        let replicas = try (0..<2).map { _ in try PrivateRedis(dataArguments + ["--replicaof", "127.0.0.1", String(master.port)], tcp: true) }
        // (No deferred stop: a task started in a defer keeps them alive past the test; when the test
        // throws, their deinit kills them.)
        let name = "taskstatus"
        let sentinels = try (0..<3).map { _ in
            try PrivateSentinel(
                monitoring: name,
                masterPort: master.port,
                settings: ["sentinel auth-user \(name) sentinel", "sentinel auth-pass \(name) \(try secret("sentinel_redis_password"))"]
            )
        }
        // Each sentinel logs in as "sentinel" and sees both replicas, which logged in as "replication".
        for sentinel in sentinels {
            let known = await eventually(timeout: .seconds(30)) {
                (await sentinel.ask("SENTINEL", "REPLICAS", name))?.array?.count == 2 ? true : nil
            }
            #expect(known == true, "\(sentinel.log)")
        }

        var bridgeUser = try RedisConfiguration(url: "redis://bridge@127.0.0.1:\(master.port)/0")
        bridgeUser.password = try secret("bridge_redis_password")
        bridgeUser.sentinel = SentinelConfiguration(nodes: sentinels.map(\.node), masterName: name)
        var producerUser = try RedisConfiguration(url: "redis://producer@127.0.0.1:\(master.port)/0")
        producerUser.password = try secret("producer_redis_password")
        producerUser.sentinel = bridgeUser.sentinel
        let tasks = TaskStatusClient(configuration: bridgeUser, prefix: "taskstatus")
        for n in 0..<2 { _ = try await tasks.put(Fixtures.task("sentinel-\(n)")) }

        let httpPort = PrivateRedis.freePort()
        let bridge = try BridgeProcess(
            [
                "serve", "--redis-url", "redis://bridge@127.0.0.1:1/0", "--sentinel", sentinels.map(\.node.description).joined(separator: ","),
                "--sentinel-master", name, "--min-replicas", "1", "--http-port", String(httpPort), "--block-ms", "100", "--log-level", "warning",
            ],
            environment: [
                "TASKSTATUS_REDIS_PASSWORD_FILE": secrets.appendingPathComponent("bridge_redis_password").path,
                "TASKSTATUS_JWT_SECRET_FILE": secrets.appendingPathComponent("jwt_secret").path,
            ]
        )
        let token = try await Tokens.sign(secret: Array(try secret("jwt_secret").utf8))
        let producer = TaskStatusClient(configuration: producerUser, prefix: "taskstatus")
        func send(_ n: Int) async throws {
            let request = TaskStatusClient.Request(
                taskId: "sentinel-\(n % 2)",
                patch: Array(#"[{"op":"replace","path":"/percentComplete","value":\#(n)}]"#.utf8),
                requestId: "sentinel-request-\(n)",
                authorization: "Bearer \(token)"
            )
            let reply = try JSONValue(parsing: try await producer.send(request, timeout: .seconds(20)))
            #expect(reply["status"] == 200, "request \(n): \(reply.jsonText)")
        }
        for n in 0..<10 { try await send(n) }

        // A graceful failover: the old master becomes a replica of the new one, logged in as "replication".
        let old = master.port
        #expect((await sentinels[0].ask("SENTINEL", "FAILOVER", name))?.string == "OK")
        let promoted = await eventually(timeout: .seconds(30)) { () async -> Int? in
            guard let parts = (await sentinels[0].ask("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name))?.array, parts.count == 2,
                let port = parts[1].string.flatMap({ Int($0) }), port != old
            else { return nil }
            return port
        }
        #expect(promoted != nil && replicas.map(\.port).contains(promoted ?? 0))
        var oldMaster = try RedisConfiguration(url: "redis://bridge@127.0.0.1:\(old)/0")
        oldMaster.password = bridgeUser.password
        let following = await eventually(timeout: .seconds(30)) { () async -> Bool? in
            let role = try? await RedisClient(configuration: oldMaster, name: "check").execute(RedisCommand("ROLE")).array
            return role?.first?.string == "slave" && role?[2].int.map(Int.init) == promoted && role?[3].string == "connected" ? true : nil
        }
        #expect(following == true, "the old master did not sync with the new one")
        for n in 10..<20 { try await send(n) }
        // The HTTP path's connection and the rate limiter's (on, with tokens) followed too. A 503 is
        // allowed while the new master's replicas resynchronise; the same X-Request-Id then applies once.
        var status = 0
        for _ in 0..<100 where status != 200 {
            let response = try await HTTP.request(
                "PATCH",
                "http://127.0.0.1:\(httpPort)/v2026/task-status/sentinel-0",
                headers: [
                    "Authorization": "Bearer \(token)", "X-SailPoint-Experimental": "true", "Content-Type": "application/json-patch+json",
                    "X-Request-Id": "sentinel-http",
                ],
                body: Array(#"[{"op":"replace","path":"/progress","value":"over HTTP"}]"#.utf8)
            )
            status = response.status
            if status != 200 {
                #expect(status == 503, "\(String(decoding: response.body, as: UTF8.self))")
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        #expect(status == 200)
        #expect(try await tasks.get("sentinel-0")?.rev == 12)
        #expect(try await tasks.get("sentinel-1")?.rev == 11)

        bridge.kill(SIGTERM)
        #expect(await bridge.waitForExit() == 0)
        #expect(!bridge.output.contains("NOPERM"), "\(bridge.output)")
        for sentinel in sentinels { #expect(!sentinel.log.contains("-failover-abort"), "\(sentinel.log)") }
        await master.stop()
        for replica in replicas { await replica.stop() }
    }
}
