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

    @Option(help: ServeOptions.consumer.help) var consumer: String?
    @Option(help: ServeOptions.batchSize.help) var batchSize: String?
    @Option(help: ServeOptions.blockMs.help) var blockMs: String?
    @Option(help: ServeOptions.batchWindowUs.help) var batchWindowUs: String?
    @Option(help: ServeOptions.workers.help) var workers: String?
    @Option(help: ServeOptions.cacheSize.help) var cacheSize: String?
    @Option(help: ServeOptions.claimIdleMs.help) var claimIdleMs: String?
    @Option(help: ServeOptions.maxDeliveries.help) var maxDeliveries: String?
    @Option(help: ServeOptions.consumerIdleTimeout.help) var consumerIdleTimeout: String?
    @Option(help: ServeOptions.replyTTL.help) var replyTtl: String?
    @Option(help: ServeOptions.eventsMaxlen.help) var eventsMaxlen: String?
    @Option(help: ServeOptions.eventsMaxBytes.help) var eventsMaxBytes: String?
    @Option(help: ServeOptions.retentionDays.help) var retentionDays: String?
    @Option(help: ServeOptions.wholeTaskMaxBytes.help) var wholeTaskMaxBytes: String?
    @Option(help: ServeOptions.deadMaxlen.help) var deadMaxlen: String?
    @Option(help: ServeOptions.minReplicas.help) var minReplicas: String?
    @Option(help: ServeOptions.replicaTimeoutMs.help) var replicaTimeoutMs: String?
    @Option(help: ServeOptions.maxPatchBytes.help) var maxPatchBytes: String?
    @Option(help: ServeOptions.maxOperations.help) var maxOperations: String?
    @Option(help: ServeOptions.maxDepth.help) var maxDepth: String?
    @Option(help: ServeOptions.writableProperties.help) var writableProperties: String?
    @Option(help: ServeOptions.requireExperimental.help) var requireExperimental: String?
    @Option(help: ServeOptions.httpHost.help) var httpHost: String?
    @Option(help: ServeOptions.httpPort.help) var httpPort: String?
    @Option(help: ServeOptions.httpTLSCertFile.help) var httpTlsCertFile: String?
    @Option(help: ServeOptions.httpTLSKeyFile.help) var httpTlsKeyFile: String?
    @Option(help: ServeOptions.httpHeaderTimeout.help) var httpHeaderTimeout: String?
    @Option(help: ServeOptions.httpBodyTimeout.help) var httpBodyTimeout: String?
    @Option(help: ServeOptions.httpIdleTimeout.help) var httpIdleTimeout: String?
    @Option(help: ServeOptions.httpMaxConnections.help) var httpMaxConnections: String?
    @Option(help: ServeOptions.httpQueueLimit.help) var httpQueueLimit: String?
    @Option(help: ServeOptions.logLevel.help) var logLevel: String?
    @Flag(help: ServeOptions.noAuth.help) var noAuth = false
    @Option(help: ServeOptions.jwtSecretFile.help) var jwtSecretFile: String?
    @Option(help: ServeOptions.jwtPublicKeyFile.help) var jwtPublicKeyFile: String?
    @Option(help: ServeOptions.jwksFile.help) var jwksFile: String?
    @Option(help: ServeOptions.jwtIssuer.help) var jwtIssuer: String?
    @Option(help: ServeOptions.jwtAudience.help) var jwtAudience: String?
    @Option(help: ServeOptions.jwtLeeway.help) var jwtLeeway: String?
    @Option(help: ServeOptions.jwtRequireExp.help) var jwtRequireExp: String?
    @Option(help: ServeOptions.readScopes.help) var readScopes: String?
    @Option(help: ServeOptions.writeScopes.help) var writeScopes: String?
    @Option(help: ServeOptions.rateLimit.help) var rateLimit: String?
    @Option(help: ServeOptions.rateLimitRequests.help) var rateLimitRequests: String?
    @Option(help: ServeOptions.rateLimitPeriod.help) var rateLimitPeriod: String?
    @Option(help: ServeOptions.rateLimitBurst.help) var rateLimitBurst: String?

    /// The resolved settings, checked; built once in `validate` so that bad values stop the start.
    struct Resolved {
        var bridge: BridgeConfiguration
        var http: HTTPConfiguration
        var logLevel: Logger.Level
    }

    func resolve() throws -> Resolved {
        typealias O = ServeOptions
        let consumer = try O.consumer.resolve(consumer, default: "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)")
        guard !consumer.isEmpty, consumer.utf8.count <= 200 else {
            throw ValidationError("invalid --consumer (environment TASKSTATUS_CONSUMER): it must be 1 to 200 bytes")
        }
        var writable = Set(TaskProperty.allCases).subtracting(TaskProperty.immutable)
        if O.writableProperties.isGiven(writableProperties) {
            writable = []
            let list = try O.writableProperties.resolve(writableProperties, default: "")
            for name in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
                guard let property = TaskProperty(name: name), !TaskProperty.immutable.contains(property) else {
                    throw ValidationError(
                        "invalid --writable-properties (environment TASKSTATUS_WRITABLE_PROPERTIES): \"\(name)\" is not a writable TaskStatus property"
                    )
                }
                writable.insert(property)
            }
        }
        let levelText = try O.logLevel.resolve(logLevel)
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw ValidationError(
                "invalid --log-level (environment TASKSTATUS_LOG_LEVEL): \"\(levelText)\" is not one of trace, debug, info, notice, warning, error, critical"
            )
        }
        var bridge = BridgeConfiguration(
            redis: try connection.redisConfiguration(),
            prefix: try connection.resolvedPrefix(),
            consumer: consumer,
            batchSize: try O.batchSize.resolve(batchSize),
            blockTimeout: .milliseconds(try O.blockMs.resolve(blockMs)),
            claimIdle: .milliseconds(try O.claimIdleMs.resolve(claimIdleMs)),
            maxDeliveries: try O.maxDeliveries.resolve(maxDeliveries),
            replyTTL: .seconds(try O.replyTTL.resolve(replyTtl)),
            eventsMaxLength: try O.eventsMaxlen.resolve(eventsMaxlen),
            eventsMaxBytes: try O.eventsMaxBytes.resolve(eventsMaxBytes),
            wholeTaskMaxBytes: try O.wholeTaskMaxBytes.resolve(wholeTaskMaxBytes),
            deadMaxLength: try O.deadMaxlen.resolve(deadMaxlen),
            deadConsumerIdle: .seconds(try O.consumerIdleTimeout.resolve(consumerIdleTimeout)),
            cacheSize: try O.cacheSize.resolve(cacheSize),
            workers: try O.workers.resolve(workers),
            httpQueueLimit: try O.httpQueueLimit.resolve(httpQueueLimit),
            minReplicas: try O.minReplicas.resolve(minReplicas),
            replicaTimeout: .milliseconds(try O.replicaTimeoutMs.resolve(replicaTimeoutMs)),
            limits: RequestLimits(
                maxPatchBytes: try O.maxPatchBytes.resolve(maxPatchBytes),
                maxOperations: try O.maxOperations.resolve(maxOperations),
                maxDepth: try O.maxDepth.resolve(maxDepth)
            ),
            requireExperimentalFlag: try O.requireExperimental.resolve(requireExperimental),
            writableProperties: writable,
            shards: try connection.resolvedShards(),
            pubsub: try connection.resolvedPubSub()
        )
        let days = try O.retentionDays.resolve(retentionDays)
        bridge.retention = days > 0 ? .seconds(days * 86_400) : nil
        let http = HTTPConfiguration(
            host: try O.httpHost.resolve(httpHost),
            port: try O.httpPort.resolve(httpPort),
            headerTimeout: .seconds(try O.httpHeaderTimeout.resolve(httpHeaderTimeout)),
            bodyTimeout: .seconds(try O.httpBodyTimeout.resolve(httpBodyTimeout)),
            idleTimeout: .seconds(try O.httpIdleTimeout.resolve(httpIdleTimeout)),
            maxConnections: try O.httpMaxConnections.resolve(httpMaxConnections, default: HTTPConfiguration.Defaults.maxConnections),
            tls: try resolveTLS()
        )
        bridge.batchWindow = .microseconds(try O.batchWindowUs.resolve(batchWindowUs))
        bridge.auth = try resolveAuth()
        let limit = try O.rateLimitRequests.resolve(rateLimitRequests)
        bridge.rateLimit = RateLimitConfiguration(
            enabled: try O.rateLimit.resolve(rateLimit, default: bridge.auth.isEnabled),
            limit: limit,
            period: .seconds(try O.rateLimitPeriod.resolve(rateLimitPeriod)),
            burst: try O.rateLimitBurst.resolve(rateLimitBurst, default: limit)
        )
        return Resolved(bridge: bridge, http: http, logLevel: level)
    }

    /// HTTPS from the certificate and key files: both or neither, read and checked now, so that a
    /// bad file stops the start with the flag and the path that name it.
    func resolveTLS() throws -> HTTPTLSConfiguration? {
        typealias O = ServeOptions
        let certificate = Setting(O.httpTLSCertFile.flag, O.httpTLSCertFile.variable, httpTlsCertFile)
        let key = Setting(O.httpTLSKeyFile.flag, O.httpTLSKeyFile.variable, httpTlsKeyFile)
        switch (certificate.value, key.value) {
        case (nil, nil):
            return nil
        case (let certificatePath?, let keyPath?):
            guard let chain = try certificate.fileContents(), let pem = try key.fileContents() else { return nil }
            do throws(HTTPTLSError) {
                return try HTTPTLSConfiguration(certificateChainPEM: chain, privateKeyPEM: pem)
            } catch {
                switch error.code {
                case .certificate:
                    throw ValidationError("invalid \(certificate.flag) (environment \(certificate.variable)): \(certificatePath): \(error.message)")
                case .privateKey:
                    throw ValidationError("invalid \(key.flag) (environment \(key.variable)): \(keyPath): \(error.message)")
                default:
                    throw ValidationError(
                        "\(key.flag) \(keyPath) does not go with \(certificate.flag) \(certificatePath): \(error.message)"
                    )
                }
            }
        case (_?, nil):
            throw ValidationError("\(certificate.flag) needs \(key.flag) (environment \(key.variable)): the certificate's private key")
        case (nil, _?):
            throw ValidationError("\(key.flag) needs \(certificate.flag) (environment \(certificate.variable)): the certificate chain")
        }
    }

    /// The JWT settings; refuses to run without a key unless --no-auth says so.
    func resolveAuth() throws -> AuthConfiguration {
        typealias O = ServeOptions
        let noAuth = try self.noAuth || O.noAuth.resolve(nil)
        var keys: [AuthConfiguration.Key] = []
        func read(_ option: OptionSpec<String>, _ value: String?) throws -> [UInt8]? {
            try Setting(option.flag, option.variable, value).fileContents()
        }
        if var secret = try read(O.jwtSecretFile, jwtSecretFile) {
            while let last = secret.last, last == 0x0A || last == 0x0D || last == 0x20 { secret.removeLast() }
            guard secret.count >= 32 else {
                throw ValidationError("invalid --jwt-secret-file (environment TASKSTATUS_JWT_SECRET_FILE): an HS256 secret must be at least 32 bytes")
            }
            keys.append(.hmacSecret(secret))
        }
        if let pem = try read(O.jwtPublicKeyFile, jwtPublicKeyFile) {
            keys.append(.publicKeyPEM(String(decoding: pem, as: UTF8.self)))
        }
        if let jwks = try read(O.jwksFile, jwksFile) {
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
        func scopes(_ option: OptionSpec<String>, _ value: String?, _ fallback: Set<String>) throws -> Set<String> {
            guard option.isGiven(value) else { return fallback }
            let list = try option.resolve(value, default: "")
            return Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        return AuthConfiguration(
            keys: keys,
            issuer: try O.jwtIssuer.resolveIfGiven(jwtIssuer),
            audience: try O.jwtAudience.resolveIfGiven(jwtAudience),
            leeway: .seconds(try O.jwtLeeway.resolve(jwtLeeway)),
            readScopes: try scopes(O.readScopes, readScopes, AuthConfiguration.Defaults.readScopes),
            writeScopes: try scopes(O.writeScopes, writeScopes, AuthConfiguration.Defaults.writeScopes),
            requiresExpiry: try O.jwtRequireExp.resolve(jwtRequireExp)
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
        let fitting = HTTPConfiguration.Defaults.maxConnections
        if settings.http.maxConnections > fitting, fitting < HTTPConfiguration.Defaults.maxConnectionsCeiling {
            logger.warning(
                "--http-max-connections is over what the descriptor limit leaves: connections past it fail to be accepted instead of being refused; raise ulimit -n",
                metadata: ["http.max_connections": "\(settings.http.maxConnections)", "http.fitting": "\(fitting)"]
            )
        }
        try await checkRedisAtStart(settings.bridge.redis, logger: logger)
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

/// With TLS, the first connection is made before anything else starts: a certificate refused
/// (ours or the server's) is a configuration error that stops the process with the reason.
/// Anything else (a server not up yet, a protocol mismatch) is logged, and the bridge starts and
/// keeps trying, not ready until it connects. Without TLS there is nothing to learn this early.
func checkRedisAtStart(_ redis: RedisConfiguration, logger: Logger) async throws {
    guard let tls = redis.tls else { return }
    if tls.verifiesPeer {
        logger.info("TLS to Redis", metadata: ["tls": "\(tls)"])
    } else {
        logger.warning(
            "TLS to Redis WITHOUT verifying the server's certificate (--redis-tls-insecure): anyone on the path can read and change what the bridge sends"
        )
    }
    let probe = RedisClient(configuration: redis, name: "redis-start")
    do {
        try await probe.connect()
    } catch  where error.code == .certificateRejected || error.code == .invalidConfiguration {
        throw StartFailure(description: "cannot start: \(error.message)")
    } catch {
        logger.warning("Redis cannot be reached yet; the bridge keeps trying", metadata: ["redis.error": "\(error.message)"])
    }
    await probe.disconnect()
}

/// A reason the process does not start, printed as `Error: <description>`, exit status 1.
struct StartFailure: Error, CustomStringConvertible {
    let description: String
}
