//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Logging
import Metrics
import Redis
import TaskStatus

/// The first step of a batch: answers 429, with `Retry-After`, the requests over their caller's
/// rate limit (one round trip for the batch, when limits are on). Not thread-safe: it belongs to
/// one processor.
struct RateLimitGate {
    private let rateLimiter: RateLimiter?
    private let metrics: BridgeMetrics
    /// The rate-limit script's SHA, loaded on first use and again after Redis lost it.
    private var rateLimitSHA: String?

    init(configuration: BridgeConfiguration, metrics: BridgeMetrics) {
        self.rateLimiter =
            configuration.rateLimit.enabled
            ? RateLimiter(configuration: configuration.rateLimit, keyPrefix: "\(configuration.prefix):ratelimit:{") : nil
        self.metrics = metrics
    }

    /// Rejects, with 429, the requests of `batch` over their caller's limit.
    mutating func limit(_ batch: inout Batch, on link: RedisLink) throws(RedisError) {
        guard let rateLimiter else { return }
        var order: [String] = []
        var members: [String: [Int]] = [:]
        for i in batch.primaries {
            guard batch.requests[i].rejection == nil, let key = batch.requests[i].rateLimitKey else { continue }
            if members[key] == nil { order.append(key) }
            members[key, default: []].append(i)
        }
        // Twice at most: Redis may have lost the script (SCRIPT FLUSH, a restart), and the
        // callers it could not check are checked again once it is loaded, not let through.
        for _ in 0..<2 where !order.isEmpty {
            if rateLimitSHA == nil {
                rateLimitSHA = try link.execute(RedisCommand("SCRIPT", "LOAD", RateLimiter.script)).string
            }
            var pipeline = RedisPipeline()
            rateLimiter.addChecks(for: order.map { ($0, members[$0]?.count ?? 0) }, sha: rateLimitSHA ?? "", to: &pipeline)
            let replies = try link.execute(pipeline).all
            var unchecked: [String] = []
            for (key, reply) in zip(order, replies) {
                if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
                    rateLimitSHA = nil
                    unchecked.append(key)
                    continue
                }
                let indices = members[key] ?? []
                let decision = RateLimiter.decision(reply, count: indices.count)
                for i in indices.dropFirst(decision.admitted) {
                    batch.reject(i, with: .error(429, "", headers: [("Retry-After", String(decision.retryAfter))]))
                    metrics.rateLimited.increment()
                }
            }
            order = unchecked
        }
    }

    /// Forgets the script (after Redis may have lost it).
    mutating func forgetScript() { rateLimitSHA = nil }
}
