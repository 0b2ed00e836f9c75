//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import JSONPatch
import Redis

/// Answers readiness: Redis answers, the consumer group exists, the consumer loop works and Redis
/// took the HTTP path's last batch; with the group's pending and lag counts. Uses a connection of
/// its own, so that a busy loop does not hold up the answer.
public struct HealthProbe: Sendable {
    private let redis: RedisClient
    private let keys: Keys
    /// Each shard's names (one entry with one stream).
    private let shardKeys: [Keys]
    private let onCluster: Bool
    private let status: BridgeStatus
    private let consumer: String

    public init(configuration: BridgeConfiguration, status: BridgeStatus) {
        var redisConfiguration = configuration.redis
        redisConfiguration.commandTimeout = .seconds(2)
        redisConfiguration.connectTimeout = .seconds(2)
        // Its short timeout says "not ready", not "the path is dead": its connections are a group
        // of their own, which does not cut the bridge's others (see ConnectionLosses).
        self.redis = RedisClient(configuration: redisConfiguration, name: "redis-health", losses: ConnectionLosses())
        self.keys = configuration.keys
        self.shardKeys = (0..<configuration.shards).map { configuration.keys.forShard($0, of: configuration.shards) }
        self.onCluster = configuration.redis.cluster != nil
        self.status = status
        self.consumer = configuration.consumer
    }

    /// The readiness verdict and the facts behind it.
    public struct Readiness: Sendable {
        public var ready: Bool
        public var reasons: [String]
        public var pending: Int64?
        public var lag: Int64?
        public var consumers: Int64?
        /// On a cluster: `CLUSTER INFO`'s `cluster_state` and how many slots are served.
        public var clusterState: String?
        public var slotsCovered: Int64?
        /// With several shards: each shard's stream and reader.
        public var shards: [Shard] = []

        public struct Shard: Sendable {
            public var shard: Int
            public var stream: String
            public var pending: Int64?
            public var lag: Int64?
            /// `reading`, `standby` (another bridge reads it), or what stops this bridge's reader.
            public var reader: String
        }

        public var json: JSONValue {
            var object = JSONObject()
            object["status"] = .string(ready ? "ready" : "not ready")
            if !reasons.isEmpty { object["reasons"] = .array(reasons.map { .string($0) }) }
            object["pending"] = pending.map { .integer($0) } ?? .null
            object["lag"] = lag.map { .integer($0) } ?? .null
            object["consumers"] = consumers.map { .integer($0) } ?? .null
            if let clusterState {
                object["cluster_state"] = .string(clusterState)
                object["slots_covered"] = slotsCovered.map { .integer($0) } ?? .null
            }
            if shards.count > 1 {
                object["shards"] = .array(
                    shards.map { shard in
                        var entry = JSONObject()
                        entry["shard"] = .integer(Int64(shard.shard))
                        entry["stream"] = .string(shard.stream)
                        entry["pending"] = shard.pending.map { .integer($0) } ?? .null
                        entry["lag"] = shard.lag.map { .integer($0) } ?? .null
                        entry["reader"] = .string(shard.reader)
                        return .object(entry)
                    }
                )
            }
            return .object(object)
        }
    }

    public func readiness() async -> Readiness {
        var readiness = Readiness(ready: true, reasons: [])
        if let problem = status.problem {
            readiness.ready = false
            readiness.reasons.append("consumer: \(problem)")
        }
        if let problem = status.httpProblem {
            readiness.ready = false
            readiness.reasons.append("http: \(problem)")
        }
        do {
            var commands = [RedisCommand("PING")]
            if onCluster { commands.append(RedisCommand("CLUSTER", "INFO")) }
            let first = commands.count
            commands += shardKeys.map { RedisCommand("XINFO", "GROUPS", $0.requests) }
            let replies = try await redis.execute(commands)
            _ = try replies[0].get()
            if onCluster {
                let info = String(decoding: try replies[1].get().bytes ?? [], as: UTF8.self)
                var fields: [String: String] = [:]
                for line in info.split(whereSeparator: \.isNewline) {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
                }
                readiness.clusterState = fields["cluster_state"] ?? "unknown"
                readiness.slotsCovered = fields["cluster_slots_ok"].flatMap { Int64($0) }
                if readiness.clusterState != "ok" {
                    readiness.ready = false
                    readiness.reasons.append("redis cluster: cluster_state is \(readiness.clusterState ?? "unknown")")
                }
            }
            let readers = status.readers
            for (k, shardKeys) in self.shardKeys.enumerated() {
                var shard = Readiness.Shard(shard: k, stream: shardKeys.requests, reader: readers.indices.contains(k) ? readers[k] : "reading")
                let reply = replies[first + k]
                if case .error(let message) = reply {
                    readiness.ready = false
                    readiness.reasons.append(
                        message.contains("no such key") ? "the request stream \(shardKeys.requests) does not exist" : "redis: \(message)"
                    )
                    readiness.shards.append(shard)
                    continue
                }
                guard case .array(let groups) = reply else {
                    throw RedisError(code: .unexpectedReply, message: "XINFO GROUPS answered \(reply)")
                }
                var found = false
                for group in groups {
                    let info = group.map
                    guard info["name"]?.string == keys.group else { continue }
                    found = true
                    shard.pending = info["pending"]?.int
                    shard.lag = info["lag"]?.int
                    readiness.pending = (readiness.pending ?? 0) + (shard.pending ?? 0)
                    if let lag = shard.lag { readiness.lag = (readiness.lag ?? 0) + lag }
                    readiness.consumers = max(readiness.consumers ?? 0, info["consumers"]?.int ?? 0)
                }
                if !found {
                    readiness.ready = false
                    readiness.reasons.append("the consumer group \(keys.group) does not exist on \(shardKeys.requests)")
                }
                readiness.shards.append(shard)
            }
        } catch let error as RedisError {
            readiness.ready = false
            readiness.reasons.append("redis: \(error.message)")
        } catch {
            readiness.ready = false
            readiness.reasons.append("\(error)")
        }
        return readiness
    }
}
