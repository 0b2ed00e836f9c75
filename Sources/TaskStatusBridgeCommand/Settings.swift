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
        }
        if ServeOptions.redisCluster.isGiven(redisCluster) {
            guard configuration.sentinel == nil else {
                throw ValidationError("--redis-cluster and --sentinel cannot be used together: a cluster fails over by itself")
            }
            let list = try ServeOptions.redisCluster.resolve(redisCluster, default: "")
            let marker = "\(try resolvedPrefix()):replication"
            do throws(RedisError) {
                configuration.cluster = ClusterConfiguration(seeds: try ClusterConfiguration.seeds(parsing: list), markerPrefix: marker)
            } catch {
                throw ValidationError("invalid --redis-cluster (environment TASKSTATUS_REDIS_CLUSTER): \(error.message)")
            }
            guard configuration.database == 0 else {
                throw ValidationError("a Redis Cluster has only database 0; the URL names database \(configuration.database)")
            }
        }
        return configuration
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
