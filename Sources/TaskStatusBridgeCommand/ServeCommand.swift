//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Bridge
import Foundation
import HTTPAPI
import Logging
import Redis
import ServiceLifecycle
import TaskStatus
import UnixSignals

/// `serve`: the bridge itself.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Consume update requests from the Redis stream and serve health over HTTP.",
        discussion: "Every option can also be set with the environment variable it names; a flag wins over its variable."
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Consumer name in the group, unique per process (env TASKSTATUS_CONSUMER; default host name and process id).")
    var consumer: String?

    @Option(help: "Most entries per XREADGROUP, 1 to 1000 (env TASKSTATUS_BATCH_SIZE; default 128).")
    var batchSize: String?

    @Option(help: "How long one XREADGROUP blocks, in ms (env TASKSTATUS_BLOCK_MS; default 1000).")
    var blockMs: String?

    @Option(help: "Idle time after which another consumer's pending entry is claimed, in ms (env TASKSTATUS_CLAIM_IDLE_MS; default 30000).")
    var claimIdleMs: String?

    @Option(help: "Deliveries after which an entry goes to the dead-letter stream (env TASKSTATUS_MAX_DELIVERIES; default 5).")
    var maxDeliveries: String?

    @Option(help: "Lifetime of stored replies, in seconds (env TASKSTATUS_REPLY_TTL; default 86400).")
    var replyTtl: String?

    @Option(help: "Approximate cap of the change-feed stream (env TASKSTATUS_EVENTS_MAXLEN; default 100000).")
    var eventsMaxlen: String?

    @Option(help: "Approximate cap of the dead-letter stream (env TASKSTATUS_DEAD_MAXLEN; default 100000).")
    var deadMaxlen: String?

    @Option(
        help: "Idle time after which a consumer with nothing pending is removed, in seconds (env TASKSTATUS_CONSUMER_IDLE_TIMEOUT; default 3600)."
    )
    var consumerIdleTimeout: String?

    @Option(help: "Tasks held in memory (env TASKSTATUS_CACHE_SIZE; default 10000; 0 reads every task from Redis).")
    var cacheSize: String?

    @Option(help: "Workers processing parts of each batch at once, 1 to 16 (env TASKSTATUS_WORKERS; default 2).")
    var workers: String?

    @Option(help: "Largest patch in bytes (env TASKSTATUS_MAX_PATCH_BYTES; default 1048576).")
    var maxPatchBytes: String?

    @Option(help: "Most operations per patch (env TASKSTATUS_MAX_OPERATIONS; default 1000).")
    var maxOperations: String?

    @Option(help: "Deepest JSON nesting in a patch (env TASKSTATUS_MAX_DEPTH; default 64).")
    var maxDepth: String?

    @Option(help: "Comma-separated properties updates may change (env TASKSTATUS_WRITABLE_PROPERTIES; default all but id and created).")
    var writableProperties: String?

    @Option(help: "Whether requests must carry x-sailpoint-experimental: true (env TASKSTATUS_REQUIRE_EXPERIMENTAL; default true).")
    var requireExperimental: String?

    @Option(help: "HTTP listen address (env TASKSTATUS_HTTP_HOST; default 127.0.0.1).")
    var httpHost: String?

    @Option(help: "HTTP port (env TASKSTATUS_HTTP_PORT; default 8080).")
    var httpPort: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical (env TASKSTATUS_LOG_LEVEL; default info).")
    var logLevel: String?

    @Flag(help: "Run without authentication (env TASKSTATUS_NO_AUTH=true).")
    var noAuth = false

    /// The resolved settings, checked; built once in `validate` so that bad values stop the start.
    struct Resolved {
        var bridge: BridgeConfiguration
        var http: HTTPConfiguration
        var logLevel: Logger.Level
    }

    func resolve() throws -> Resolved {
        let redis: RedisConfiguration
        do {
            redis = try RedisConfiguration(url: connection.resolvedURL)
        } catch {
            throw ValidationError("invalid --redis-url (environment REDIS_URL): \(error.message)")
        }
        let consumer = Setting("--consumer", "TASKSTATUS_CONSUMER", consumer)
            .string(default: "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)")
        var writable = Set(TaskProperty.allCases).subtracting(TaskProperty.immutable)
        let writableSetting = Setting("--writable-properties", "TASKSTATUS_WRITABLE_PROPERTIES", writableProperties)
        if let list = writableSetting.value {
            writable = []
            for name in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
                guard let property = TaskProperty(name: name), !TaskProperty.immutable.contains(property) else {
                    throw ValidationError(
                        "invalid --writable-properties (environment TASKSTATUS_WRITABLE_PROPERTIES): \"\(name)\" is not a writable TaskStatus property"
                    )
                }
                writable.insert(property)
            }
        }
        let levelText = Setting("--log-level", "TASKSTATUS_LOG_LEVEL", logLevel).string(default: "info")
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw ValidationError(
                "invalid --log-level (environment TASKSTATUS_LOG_LEVEL): \"\(levelText)\" is not one of trace, debug, info, notice, warning, error, critical"
            )
        }
        guard !consumer.isEmpty, consumer.utf8.count <= 200 else {
            throw ValidationError("invalid --consumer (environment TASKSTATUS_CONSUMER): it must be 1 to 200 bytes")
        }
        let bridge = BridgeConfiguration(
            redis: redis,
            prefix: try connection.resolvedPrefix(),
            consumer: consumer,
            batchSize: try Setting("--batch-size", "TASKSTATUS_BATCH_SIZE", batchSize).int(default: 128, in: 1...1000),
            blockTimeout: .milliseconds(try Setting("--block-ms", "TASKSTATUS_BLOCK_MS", blockMs).int(default: 1000, in: 1...60000)),
            claimIdle: .milliseconds(try Setting("--claim-idle-ms", "TASKSTATUS_CLAIM_IDLE_MS", claimIdleMs).int(default: 30000, in: 1...86_400_000)),
            maxDeliveries: try Setting("--max-deliveries", "TASKSTATUS_MAX_DELIVERIES", maxDeliveries).int(default: 5, in: 1...1000),
            replyTTL: .seconds(try Setting("--reply-ttl", "TASKSTATUS_REPLY_TTL", replyTtl).int(default: 86400, in: 1...31_536_000)),
            eventsMaxLength: try Setting("--events-maxlen", "TASKSTATUS_EVENTS_MAXLEN", eventsMaxlen).int(default: 100_000, in: 1...1_000_000_000),
            deadMaxLength: try Setting("--dead-maxlen", "TASKSTATUS_DEAD_MAXLEN", deadMaxlen).int(default: 100_000, in: 1...1_000_000_000),
            deadConsumerIdle: .seconds(
                try Setting("--consumer-idle-timeout", "TASKSTATUS_CONSUMER_IDLE_TIMEOUT", consumerIdleTimeout).int(default: 3600, in: 1...31_536_000)
            ),
            cacheSize: try Setting("--cache-size", "TASKSTATUS_CACHE_SIZE", cacheSize).int(default: 10000, in: 0...10_000_000),
            workers: try Setting("--workers", "TASKSTATUS_WORKERS", workers).int(default: 2, in: 1...16),
            limits: RequestLimits(
                maxPatchBytes: try Setting("--max-patch-bytes", "TASKSTATUS_MAX_PATCH_BYTES", maxPatchBytes).int(
                    default: 1 << 20,
                    in: 2...(256 << 20)
                ),
                maxOperations: try Setting("--max-operations", "TASKSTATUS_MAX_OPERATIONS", maxOperations).int(default: 1000, in: 1...1_000_000),
                maxDepth: try Setting("--max-depth", "TASKSTATUS_MAX_DEPTH", maxDepth).int(default: 64, in: 2...4096)
            ),
            requireExperimentalFlag: try Setting("--require-experimental", "TASKSTATUS_REQUIRE_EXPERIMENTAL", requireExperimental).bool(
                default: true
            ),
            writableProperties: writable
        )
        let http = HTTPConfiguration(
            host: Setting("--http-host", "TASKSTATUS_HTTP_HOST", httpHost).string(default: "127.0.0.1"),
            port: try Setting("--http-port", "TASKSTATUS_HTTP_PORT", httpPort).int(default: 8080, in: 0...65535)
        )
        return Resolved(bridge: bridge, http: http, logLevel: level)
    }

    func validate() throws {
        _ = try resolve()
        let noAuth = try self.noAuth || Setting("--no-auth", "TASKSTATUS_NO_AUTH", nil).bool(default: false)
        guard noAuth else {
            throw ValidationError("authentication is not available yet: pass --no-auth (or TASKSTATUS_NO_AUTH=true) to run without it")
        }
    }

    func run() async throws {
        let settings = try resolve()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = settings.logLevel
            return handler
        }
        var logger = Logger(label: "task-status-bridge")
        logger.logLevel = settings.logLevel
        logger.warning("authentication is off (--no-auth): any producer can update any task")

        let app = BridgeApplication(configuration: settings.bridge, http: settings.http, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: app.services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}

/// The bridge's services, wired from a configuration (tests build it the same way).
struct BridgeApplication {
    let services: [any Service]

    init(configuration: BridgeConfiguration, http: HTTPConfiguration, logger: Logger) {
        let metrics = BridgeMetrics()
        let status = BridgeStatus()
        let bridge = BridgeService(configuration: configuration, status: status, metrics: metrics, logger: logger)
        let server = buildHTTPApplication(
            configuration: http,
            health: HealthProbe(configuration: configuration, status: status),
            logger: logger
        )
        services = [bridge, server]
    }
}
