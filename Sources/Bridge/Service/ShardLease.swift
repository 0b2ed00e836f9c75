//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Redis
import Synchronization

/// Which bridge reads a shard: one at a time, so that a task's requests, all on its shard's
/// stream, are applied in the order they were queued however many bridges run.
///
/// Every bridge announces itself in `<prefix>:bridges` (a sorted set of consumer names by the
/// time last seen). Each shard belongs to one of the bridges seen in the last ``ttl``, picked by
/// rendezvous hashing, so that every bridge computes the same owners and a bridge joining or
/// leaving moves only its share. The owner holds `<prefix>:lease:{s<k>}` (in the shard stream's
/// slot), renewed as it reads; a bridge that stops renewing loses it after ``ttl``, and a bridge
/// that is no longer the owner lets it go after the batch it is on.
struct ShardLease {
    let shard: Int
    let consumer: String
    let leaseKey: String
    let membersKey: String
    let ttl: Duration
    /// The bridges seen lately, shared by this bridge's shards.
    let roster: BridgeRoster
    /// When the lease was last written.
    private var renewed: ContinuousClock.Instant?
    private var holding = false
    /// Who else the last look saw (for readiness).
    private(set) var holder: String?

    static let defaultTTL = Duration.seconds(5)

    init(shard: Int, keys: Keys, consumer: String, ttl: Duration = ShardLease.defaultTTL) {
        self.shard = shard
        self.consumer = consumer
        self.leaseKey = "\(keys.prefix):lease:{s\(shard)}"
        self.membersKey = "\(keys.prefix):bridges"
        self.ttl = ttl
        self.roster = BridgeRoster.shared(membersKey: membersKey, consumer: consumer)
    }

    /// Whether this bridge reads the shard now. Writes only when a third of the lease has passed
    /// (or it is not held): a busy consumer asks on every batch.
    mutating func check(on link: RedisLink) throws(RedisError) -> Bool {
        let now = ContinuousClock.now
        if holding, let renewed, now - renewed < ttl / 3 { return true }
        let ttlMilliseconds = ttl.milliseconds
        let members = try roster.members(on: link, ttl: ttl)
        let wanted = Self.owner(of: shard, among: members) == consumer
        let answer = try link.execute(RedisCommand("EVAL", Self.script, 1, leaseKey, consumer, ttlMilliseconds, wanted ? "1" : "0"))
        guard case .array(let result) = answer, result.count == 2 else {
            throw RedisError(code: .unexpectedReply, message: "the lease script answered \(answer)")
        }
        holding = result[0].int == 1
        holder = result[1].string
        renewed = now
        return holding
    }

    /// Lets the shard go (on shutdown), so that another bridge takes it at once.
    mutating func release(on link: RedisLink) {
        guard holding else { return }
        _ = try? link.execute(RedisCommand("EVAL", Self.script, 1, leaseKey, consumer, ttl.milliseconds, "0"))
        holding = false
    }

    /// The bridge among `members` that reads `shard`: the highest hash of name and shard.
    static func owner(of shard: Int, among members: [String]) -> String? {
        members.max { score($0, shard) < score($1, shard) }
    }

    private static func score(_ member: String, _ shard: Int) -> UInt64 {
        // FNV-1a: the same on every bridge and every run (Swift's hashValue is seeded per process).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in Array(member.utf8) + [0] + Array(String(shard).utf8) {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        // FNV's last bytes barely reach the high bits, which decide the comparison: mix them in
        // (MurmurHash3's finalizer), or one name would win every shard.
        hash ^= hash >> 33
        hash = hash &* 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash = hash &* 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return hash
    }

    /// KEYS[1] the lease, ARGV[1] this bridge, ARGV[2] the lease in ms, ARGV[3] "1" to take or
    /// keep it, "0" to let it go. Answers {1 if held now, else 0; the holder}.
    static let script = """
        local holder = redis.call('GET', KEYS[1])
        if ARGV[3] == '1' then
          if holder == ARGV[1] then
            redis.call('PEXPIRE', KEYS[1], ARGV[2])
            return {1, holder}
          end
          if not holder then
            redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
            return {1, ARGV[1]}
          end
          return {0, holder}
        end
        if holder == ARGV[1] then
          redis.call('DEL', KEYS[1])
          return {0, ''}
        end
        return {0, holder or ''}
        """
}

/// The bridges seen in the last lease (`<prefix>:bridges`, a sorted set of consumer names by the
/// time last seen), shared by one bridge's shard consumers: this bridge announces itself and
/// looks once per third of the lease, not once per shard (at rest with 16 shards, that was most
/// of the bridge's round trips).
final class BridgeRoster: Sendable {
    let membersKey: String
    let consumer: String
    private let state = Mutex<(members: [String], seen: ContinuousClock.Instant?, looking: Bool)>(([], nil, false))
    private static let rosters = Mutex<[String: BridgeRoster]>([:])

    init(membersKey: String, consumer: String) {
        self.membersKey = membersKey
        self.consumer = consumer
    }

    /// The roster of one bridge (by its set and its consumer name) in this process.
    static func shared(membersKey: String, consumer: String) -> BridgeRoster {
        rosters.withLock { rosters in
            let name = membersKey + "\u{0}" + consumer
            if let roster = rosters[name] { return roster }
            let roster = BridgeRoster(membersKey: membersKey, consumer: consumer)
            rosters[name] = roster
            return roster
        }
    }

    /// The bridges seen in the last `ttl`, this one among them: as last looked, unless a third
    /// of `ttl` has passed since, when this bridge announces itself and looks again on `link`
    /// (Redis's clock, so that every bridge counts the same time).
    func members(on link: RedisLink, ttl: Duration) throws(RedisError) -> [String] {
        let now = ContinuousClock.now
        // The shards' consumers renew their leases at about the same times: one of them looks,
        // the others take the last look meanwhile (a little older, still within the lease).
        let cached = state.withLock { state -> [String]? in
            guard let seen = state.seen else { return nil }
            if now - seen < ttl / 3 || (state.looking && now - seen < ttl / 2) { return state.members }
            state.looking = true
            return nil
        }
        if let cached { return cached }
        defer { state.withLock { $0.looking = false } }
        let ttlMilliseconds = ttl.milliseconds
        let clock = try link.execute(RedisCommand("TIME"))
        guard case .array(let parts) = clock, parts.count == 2, let seconds = parts[0].int, let micros = parts[1].int else {
            throw RedisError(code: .unexpectedReply, message: "TIME answered \(clock)")
        }
        let nowMilliseconds = seconds * 1000 + micros / 1000
        let replies = try link.execute([
            RedisCommand("ZADD", membersKey, nowMilliseconds, consumer),
            RedisCommand("ZREMRANGEBYSCORE", membersKey, "-inf", nowMilliseconds - 4 * ttlMilliseconds),
            RedisCommand("ZRANGE", membersKey, nowMilliseconds - ttlMilliseconds, "+inf", "BYSCORE"),
        ])
        let members = (try replies[2].get().array ?? []).compactMap(\.string)
        state.withLock { $0 = (members, now, false) }
        return members
    }
}
