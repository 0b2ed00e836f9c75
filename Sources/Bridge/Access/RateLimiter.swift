//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Redis

/// GCRA (the generic cell rate algorithm) per caller, kept in Redis so that every bridge instance
/// shares one budget per caller. One key per caller, so it runs on Redis Cluster too.
struct RateLimiter {
    let configuration: RateLimitConfiguration
    let keyPrefix: String

    /// Admits up to `count` requests of one caller: KEYS[1] is the caller's key; ARGV are the
    /// emission interval and the tolerance in milliseconds, and the count. Answers how many are
    /// admitted (the first ones) and, when not all, the milliseconds until the next one would be.
    static let script = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local interval = tonumber(ARGV[1])
        local tolerance = tonumber(ARGV[2])
        local count = tonumber(ARGV[3])
        local tat = tonumber(redis.call('GET', KEYS[1]) or now)
        if tat < now then tat = now end
        local admitted = 0
        while admitted < count and tat - now <= tolerance do
          tat = tat + interval
          admitted = admitted + 1
        end
        if admitted > 0 then
          redis.call('SET', KEYS[1], tat, 'PX', tat - now + interval)
        end
        local wait = 0
        if admitted < count then wait = tat - tolerance - now end
        return {admitted, wait}
        """

    /// Adds one check per caller to `pipeline` (in the order of `callers`).
    func addChecks(for callers: [(key: String, count: Int)], sha: String, to pipeline: inout RedisPipeline) {
        for caller in callers {
            pipeline.begin("EVALSHA")
            pipeline.add(sha)
            pipeline.add(1)
            pipeline.add(joining: keyPrefix, caller.key, "}")
            pipeline.add(configuration.emissionInterval)
            pipeline.add(configuration.tolerance)
            pipeline.add(caller.count)
        }
    }

    /// Reads one check's answer: how many are admitted, and the wait for the others in whole
    /// seconds (at least 1, as `Retry-After` takes them).
    static func decision(_ reply: RedisReply, count: Int) -> (admitted: Int, retryAfter: Int) {
        guard case .array(let parts) = reply, parts.count == 2, let admitted = parts[0].int, let wait = parts[1].int else {
            // A limiter that cannot answer does not stop the traffic.
            return (count, 0)
        }
        return (Int(admitted), max(1, Int((wait + 999) / 1000)))
    }
}
