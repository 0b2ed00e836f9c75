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
import Metrics
import Prometheus
import Redis
import ServiceLifecycle
import TaskStatus
import UnixSignals

/// `serve`: the bridge itself.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Consume update requests from the Redis stream; serve the task-status API, health and metrics over HTTP.",
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

    @Option(help: "HTTP updates that may wait for the HTTP worker; past it they are answered 503 (env TASKSTATUS_HTTP_QUEUE_LIMIT; default 4096).")
    var httpQueueLimit: String?

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

    @Flag(help: "Run without authentication (env TASKSTATUS_NO_AUTH=true). Without it, a JWT key is required.")
    var noAuth = false

    @Option(help: "File with the HS256 shared secret (env TASKSTATUS_JWT_SECRET_FILE).")
    var jwtSecretFile: String?

    @Option(help: "File with an RS256 or ES256 public key in PEM (env TASKSTATUS_JWT_PUBLIC_KEY_FILE).")
    var jwtPublicKeyFile: String?

    @Option(help: "File with a JSON Web Key Set (env TASKSTATUS_JWKS_FILE).")
    var jwksFile: String?

    @Option(help: "Required token issuer, iss (env TASKSTATUS_JWT_ISSUER).")
    var jwtIssuer: String?

    @Option(help: "Required token audience, aud (env TASKSTATUS_JWT_AUDIENCE).")
    var jwtAudience: String?

    @Option(help: "Whether tokens must carry exp; false accepts tokens valid forever, a risk (env TASKSTATUS_JWT_REQUIRE_EXP; default true).")
    var jwtRequireExp: String?

    @Option(help: "Clock skew allowed on exp, nbf and iat, in seconds (env TASKSTATUS_JWT_LEEWAY; default 60).")
    var jwtLeeway: String?

    @Option(help: "Comma-separated scopes that allow GET (env TASKSTATUS_READ_SCOPES; default idn:task-management:read,sp:scopes:all).")
    var readScopes: String?

    @Option(help: "Comma-separated scopes that allow PATCH (env TASKSTATUS_WRITE_SCOPES; default idn:task-management:write,sp:scopes:all).")
    var writeScopes: String?

    @Option(help: "Per-caller rate limits on or off (env TASKSTATUS_RATE_LIMIT; default on with authentication, off with --no-auth).")
    var rateLimit: String?

    @Option(help: "Requests allowed per caller per period (env TASKSTATUS_RATE_LIMIT_REQUESTS; default 100).")
    var rateLimitRequests: String?

    @Option(help: "The rate limit's period in seconds (env TASKSTATUS_RATE_LIMIT_PERIOD; default 10).")
    var rateLimitPeriod: String?

    @Option(help: "Requests a caller may send at once after a quiet spell (env TASKSTATUS_RATE_LIMIT_BURST; default the requests per period).")
    var rateLimitBurst: String?

    /// The resolved settings, checked; built once in `validate` so that bad values stop the start.
    struct Resolved {
        var bridge: BridgeConfiguration
        var http: HTTPConfiguration
        var logLevel: Logger.Level
    }

    func resolve() throws -> Resolved {
        let redis = try connection.redisConfiguration()
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
            httpQueueLimit: try Setting("--http-queue-limit", "TASKSTATUS_HTTP_QUEUE_LIMIT", httpQueueLimit).int(default: 4096, in: 1...1_000_000),
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
        var configured = bridge
        configured.auth = try resolveAuth()
        let limitOn = try Setting("--rate-limit", "TASKSTATUS_RATE_LIMIT", rateLimit).bool(default: configured.auth.isEnabled)
        let limit = try Setting("--rate-limit-requests", "TASKSTATUS_RATE_LIMIT_REQUESTS", rateLimitRequests).int(default: 100, in: 1...1_000_000)
        configured.rateLimit = RateLimitConfiguration(
            enabled: limitOn,
            limit: limit,
            period: .seconds(try Setting("--rate-limit-period", "TASKSTATUS_RATE_LIMIT_PERIOD", rateLimitPeriod).int(default: 10, in: 1...86400)),
            burst: try Setting("--rate-limit-burst", "TASKSTATUS_RATE_LIMIT_BURST", rateLimitBurst).int(default: limit, in: 1...1_000_000)
        )
        return Resolved(bridge: configured, http: http, logLevel: level)
    }

    /// The JWT settings; refuses to run without a key unless --no-auth says so.
    func resolveAuth() throws -> AuthConfiguration {
        let noAuth = try self.noAuth || Setting("--no-auth", "TASKSTATUS_NO_AUTH", nil).bool(default: false)
        var keys: [AuthConfiguration.Key] = []
        func read(_ flag: String, _ variable: String, _ value: String?) throws -> [UInt8]? {
            try Setting(flag, variable, value).fileContents()
        }
        if var secret = try read("--jwt-secret-file", "TASKSTATUS_JWT_SECRET_FILE", jwtSecretFile) {
            while let last = secret.last, last == 0x0A || last == 0x0D || last == 0x20 { secret.removeLast() }
            guard secret.count >= 32 else {
                throw ValidationError("invalid --jwt-secret-file (environment TASKSTATUS_JWT_SECRET_FILE): an HS256 secret must be at least 32 bytes")
            }
            keys.append(.hmacSecret(secret))
        }
        if let pem = try read("--jwt-public-key-file", "TASKSTATUS_JWT_PUBLIC_KEY_FILE", jwtPublicKeyFile) {
            keys.append(.publicKeyPEM(String(decoding: pem, as: UTF8.self)))
        }
        if let jwks = try read("--jwks-file", "TASKSTATUS_JWKS_FILE", jwksFile) {
            keys.append(.jwks(String(decoding: jwks, as: UTF8.self)))
        }
        if noAuth && !keys.isEmpty {
            throw ValidationError("--no-auth and a JWT key were both given; choose one")
        }
        if !noAuth && keys.isEmpty {
            throw ValidationError(
                "no JWT key configured: give --jwt-secret-file, --jwt-public-key-file or --jwks-file, or --no-auth (TASKSTATUS_NO_AUTH=true) to run without authentication"
            )
        }
        func scopes(_ flag: String, _ variable: String, _ value: String?, _ fallback: Set<String>) -> Set<String> {
            guard let list = Setting(flag, variable, value).value else { return fallback }
            return Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        let defaults = AuthConfiguration()
        return AuthConfiguration(
            keys: keys,
            issuer: Setting("--jwt-issuer", "TASKSTATUS_JWT_ISSUER", jwtIssuer).value,
            audience: Setting("--jwt-audience", "TASKSTATUS_JWT_AUDIENCE", jwtAudience).value,
            leeway: .seconds(try Setting("--jwt-leeway", "TASKSTATUS_JWT_LEEWAY", jwtLeeway).int(default: 60, in: 0...3600)),
            readScopes: scopes("--read-scopes", "TASKSTATUS_READ_SCOPES", readScopes, defaults.readScopes),
            writeScopes: scopes("--write-scopes", "TASKSTATUS_WRITE_SCOPES", writeScopes, defaults.writeScopes),
            requiresExpiry: try Setting("--jwt-require-exp", "TASKSTATUS_JWT_REQUIRE_EXP", jwtRequireExp).bool(default: true)
        )
    }

    func validate() throws {
        _ = try resolve()
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
        if !settings.bridge.auth.isEnabled {
            logger.warning("authentication is off (--no-auth): any producer can update any task")
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let app: BridgeApplication
        do {
            app = try await BridgeApplication(configuration: settings.bridge, http: settings.http, metrics: registry, logger: logger)
        } catch {
            throw ValidationError("the JWT keys cannot be used: \(error)")
        }
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
