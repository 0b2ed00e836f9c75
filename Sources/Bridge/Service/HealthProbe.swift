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
    private let status: BridgeStatus
    private let consumer: String

    public init(configuration: BridgeConfiguration, status: BridgeStatus) {
        var redisConfiguration = configuration.redis
        redisConfiguration.commandTimeout = .seconds(2)
        redisConfiguration.connectTimeout = .seconds(2)
        self.redis = RedisClient(configuration: redisConfiguration, name: "redis-health")
        self.keys = configuration.keys
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

        public var json: JSONValue {
            var object = JSONObject()
            object["status"] = .string(ready ? "ready" : "not ready")
            if !reasons.isEmpty { object["reasons"] = .array(reasons.map { .string($0) }) }
            object["pending"] = pending.map { .integer($0) } ?? .null
            object["lag"] = lag.map { .integer($0) } ?? .null
            object["consumers"] = consumers.map { .integer($0) } ?? .null
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
            let replies = try await redis.execute([RedisCommand("PING"), RedisCommand("XINFO", "GROUPS", keys.requests)])
            _ = try replies[0].get()
            guard case .array(let groups) = try replies[1].get() else {
                throw RedisError(code: .unexpectedReply, message: "XINFO GROUPS answered \(replies[1])")
            }
            var found = false
            for group in groups {
                let info = group.map
                guard info["name"]?.string == keys.group else { continue }
                found = true
                readiness.pending = info["pending"]?.int
                readiness.lag = info["lag"]?.int
                readiness.consumers = info["consumers"]?.int
            }
            if !found {
                readiness.ready = false
                readiness.reasons.append("the consumer group \(keys.group) does not exist on \(keys.requests)")
            }
        } catch let error as RedisError {
            readiness.ready = false
            if error.serverErrorPrefix == "ERR", error.message.contains("no such key") {
                readiness.reasons.append("the request stream \(keys.requests) does not exist")
            } else {
                readiness.reasons.append("redis: \(error.message)")
            }
        } catch {
            readiness.ready = false
            readiness.reasons.append("\(error)")
        }
        return readiness
    }
}
