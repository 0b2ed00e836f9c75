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
import Redis

/// Resolves one setting from its flag, else its environment variable, else its default; a bad
/// value is refused with both names, so that the user finds it wherever it was set.
struct Setting {
    let flag: String
    let variable: String
    let value: String?

    init(_ flag: String, _ variable: String, _ given: String?) {
        self.flag = flag
        self.variable = variable
        self.value = given ?? ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The contents of the file the setting names; `nil` when it is not set.
    func fileContents() throws -> [UInt8]? {
        guard let path = value else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("invalid \(flag) (environment \(variable)): cannot read \(path)")
        }
        return [UInt8](data)
    }

    /// The password in the file the setting names, without its trailing newline; `nil` when the
    /// setting is not set. A file that is not UTF-8 or holds nothing is refused.
    func password() throws -> String? {
        guard let bytes = try fileContents(), let path = value else { return nil }
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw ValidationError("invalid \(flag) (environment \(variable)): cannot read \(path)")
        }
        let password = text.trimmingCharacters(in: .newlines)
        guard !password.isEmpty else { throw ValidationError("invalid \(flag) (environment \(variable)): \(path) is empty") }
        return password
    }
}

/// The connection options every command shares.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("redis-url"), help: ServeOptions.redisURL.help)
    var redisURL: String?

    @Option(help: ServeOptions.redisPasswordFile.help)
    var redisPasswordFile: String?

    @Option(help: ServeOptions.sentinel.help)
    var sentinel: String?

    @Option(help: ServeOptions.sentinelMaster.help)
    var sentinelMaster: String?

    @Option(help: ServeOptions.sentinelPasswordFile.help)
    var sentinelPasswordFile: String?

    @Option(help: ServeOptions.redisCluster.help)
    var redisCluster: String?

    @Option(help: ServeOptions.shards.help)
    var shards: Int?

    @Option(help: ServeOptions.pubsub.help)
    var pubsub: String?

    @Option(help: ServeOptions.prefix.help)
    var prefix: String?

    @Option(help: ServeOptions.redisTLSCAFile.help)
    var redisTlsCaFile: String?

    @Option(help: ServeOptions.redisTLSCertFile.help)
    var redisTlsCertFile: String?

    @Option(help: ServeOptions.redisTLSKeyFile.help)
    var redisTlsKeyFile: String?

    @Option(help: ServeOptions.redisTLSServerName.help)
    var redisTlsServerName: String?

    @Flag(help: ServeOptions.redisTLSInsecure.help)
    var redisTlsInsecure = false

    @Option(help: ServeOptions.sentinelTLS.help)
    var sentinelTls: String?

    @Option(help: ServeOptions.redisCommandTimeout.help)
    var redisCommandTimeout: String?

    @Option(help: ServeOptions.redisKeepalive.help)
    var redisKeepalive: String?

    var resolvedURL: String { (try? ServeOptions.redisURL.resolve(redisURL)) ?? RedisConfiguration.defaultURL }

    /// The Redis URL with the password from the password file, if one is given.
    func redisConfiguration() throws -> RedisConfiguration {
        var configuration: RedisConfiguration
        do {
            configuration = try RedisConfiguration(url: resolvedURL)
        } catch {
            throw ValidationError("invalid --redis-url (environment REDIS_URL): \(error.message)")
        }
        if let password = try Setting(ServeOptions.redisPasswordFile.flag, ServeOptions.redisPasswordFile.variable, redisPasswordFile).password() {
            configuration.password = password
        }
        configuration.commandTimeout = .seconds(try ServeOptions.redisCommandTimeout.resolve(redisCommandTimeout))
        configuration.keepalive = .seconds(try ServeOptions.redisKeepalive.resolve(redisKeepalive))
        configuration.tls = try resolvedTLS(urlTLS: configuration.tls)
        if ServeOptions.sentinel.isGiven(sentinel) {
            let list = try ServeOptions.sentinel.resolve(sentinel, default: "")
            let nodes: [SentinelConfiguration.Node]
            do {
                nodes = try SentinelConfiguration.nodes(parsing: list)
            } catch {
                throw ValidationError("invalid --sentinel (environment TASKSTATUS_SENTINEL): \(error.message)")
            }
            configuration.sentinel = SentinelConfiguration(nodes: nodes, masterName: try ServeOptions.sentinelMaster.resolve(sentinelMaster))
            configuration.sentinel?.password =
                try Setting(ServeOptions.sentinelPasswordFile.flag, ServeOptions.sentinelPasswordFile.variable, sentinelPasswordFile).password()
            if try ServeOptions.sentinelTLS.resolve(sentinelTls, default: configuration.tls != nil) {
                guard let tls = configuration.tls else {
                    throw ValidationError(
                        "--sentinel-tls (environment TASKSTATUS_SENTINEL_TLS) needs TLS settings: use rediss:// or --redis-tls-ca-file"
                    )
                }
                configuration.sentinel?.tls = tls
            }
        }
        if ServeOptions.redisCluster.isGiven(redisCluster) {
            guard configuration.sentinel == nil else {
                throw ValidationError("--redis-cluster and --sentinel cannot be used together: a cluster fails over by itself")
            }
            let list = try ServeOptions.redisCluster.resolve(redisCluster, default: "")
            do throws(RedisError) {
                configuration.cluster = ClusterConfiguration(seeds: try ClusterConfiguration.seeds(parsing: list))
            } catch {
                throw ValidationError("invalid --redis-cluster (environment TASKSTATUS_REDIS_CLUSTER): \(error.message)")
            }
            guard configuration.database == 0 else {
                throw ValidationError("a Redis Cluster has only database 0; the URL names database \(configuration.database)")
            }
        }
        return configuration
    }

    /// TLS as the URL (`rediss://`) and the `--redis-tls-*` settings say: any of them turns it on;
    /// an explicit `redis://` URL with them is a contradiction, refused. The files are read now,
    /// so that a bad one stops the start with its name.
    func resolvedTLS(urlTLS: RedisTLSConfiguration?) throws -> RedisTLSConfiguration? {
        typealias O = ServeOptions
        let caFile = try O.redisTLSCAFile.resolveIfGiven(redisTlsCaFile)
        let certificateFile = try O.redisTLSCertFile.resolveIfGiven(redisTlsCertFile)
        let keyFile = try O.redisTLSKeyFile.resolveIfGiven(redisTlsKeyFile)
        let serverName = try O.redisTLSServerName.resolveIfGiven(redisTlsServerName)
        let insecure = try redisTlsInsecure || O.redisTLSInsecure.resolve(nil)
        let anyGiven = caFile != nil || certificateFile != nil || keyFile != nil || serverName != nil || insecure
        guard urlTLS != nil || anyGiven else { return nil }
        if urlTLS == nil, O.redisURL.isGiven(redisURL) {
            throw ValidationError(
                "TLS settings (--redis-tls-*) were given with a plain redis:// URL (--redis-url or REDIS_URL): use rediss:// for TLS, or drop the TLS settings"
            )
        }
        if (certificateFile == nil) != (keyFile == nil) {
            throw ValidationError(
                "a client certificate needs both --redis-tls-cert-file (TASKSTATUS_REDIS_TLS_CERT_FILE) and --redis-tls-key-file (TASKSTATUS_REDIS_TLS_KEY_FILE)"
            )
        }
        let tls = RedisTLSConfiguration(
            caFile: caFile,
            certificateFile: certificateFile,
            keyFile: keyFile,
            serverName: serverName,
            verifiesPeer: !insecure
        )
        do throws(RedisError) {
            try tls.check()
        } catch {
            throw ValidationError("the Redis TLS settings cannot be used: \(error.message)")
        }
        return tls
    }

    func resolvedShards() throws -> Int {
        try ServeOptions.shards.resolve(shards.map(String.init))
    }

    func resolvedPubSub() throws -> PubSubMode {
        let text = try ServeOptions.pubsub.resolve(pubsub)
        guard let mode = PubSubMode(rawValue: text.lowercased()) else {
            throw ValidationError("invalid --pubsub (environment TASKSTATUS_PUBSUB): \"\(text)\" is not classic or sharded")
        }
        return mode
    }

    func resolvedPrefix() throws -> String {
        let prefix = try ServeOptions.prefix.resolve(prefix)
        guard !prefix.isEmpty, !prefix.contains(where: { $0 == "{" || $0 == "}" || $0.isWhitespace }) else {
            throw ValidationError("invalid --prefix (environment TASKSTATUS_PREFIX): \"\(prefix)\" must be non-empty, without braces or spaces")
        }
        return prefix
    }
}
