//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// The server-side scripts. Each touches the keys of one task only, which share the `{id}` hash
/// tag, so that they run unchanged on Redis Cluster.
enum Scripts {
    /// Commits the requests of one batch that concern one task, atomically, and publishes the
    /// notifications of the updates.
    ///
    /// KEYS[1] is the task hash, KEYS[2...] the reply keys of the requests, in order.
    /// ARGV[1] is the `_rev` the replies were computed against ("" when the hash has none),
    /// ARGV[2] the reply TTL in seconds, ARGV[3] and ARGV[4] the channels of all updates and of
    /// this task's, ARGV[5] the number of hash fields to set (as name/value pairs after it, `_rev`
    /// among them when the revision moves), then the number of fields to delete and their names,
    /// then two per request: its reply ("" for a reply not to store) and its notification (""
    /// when it changed nothing).
    ///
    /// Publishing here sends each notification to Redis once instead of once per channel.
    /// Channels are not keys, so the script stays within the task's hash slot; the notifications
    /// go out right after the write they announce, before the change-feed entry and the reply,
    /// which live in other slots and are sent by the bridge after the commit.
    ///
    /// Answers `{1}` when committed; `{2, i, reply, ...}` when some requests already have stored
    /// replies (nothing written: those were answered before, the others must be decided again);
    /// `{3, field, value, ...}` with the current hash when `_rev` moved (nothing written).
    static let commit = """
        local n = #KEYS
        if n > 1 and redis.call('EXISTS', unpack(KEYS, 2, n)) > 0 then
          local out = {2}
          for k = 2, n do
            local stored = redis.call('GET', KEYS[k])
            if stored then
              out[#out + 1] = k - 1
              out[#out + 1] = stored
            end
          end
          return out
        end
        local rev = redis.call('HGET', KEYS[1], '_rev')
        if (rev or '') ~= ARGV[1] then
          local hash = redis.call('HGETALL', KEYS[1])
          table.insert(hash, 1, 3)
          return hash
        end
        local i = 5
        local sets = tonumber(ARGV[i])
        if sets > 0 then
          redis.call('HSET', KEYS[1], unpack(ARGV, i + 1, i + 2 * sets))
        end
        i = i + 2 * sets + 1
        local dels = tonumber(ARGV[i])
        if dels > 0 then
          redis.call('HDEL', KEYS[1], unpack(ARGV, i + 1, i + dels))
        end
        i = i + dels + 1
        for k = 2, n do
          if ARGV[i] ~= '' then
            redis.call('SET', KEYS[k], ARGV[i], 'EX', ARGV[2])
          end
          local note = ARGV[i + 1]
          if note ~= '' then
            redis.call('PUBLISH', ARGV[3], note)
            redis.call('PUBLISH', ARGV[4], note)
          end
          i = i + 2
        end
        return {1}
        """

    /// Deletes a stored reply (KEYS[1]) only if it is the 500 of a dead-lettered request
    /// (it contains ARGV[1]): a replayed request must be applied, not answered that 500 again,
    /// but a real answer stored meanwhile must stay.
    static let forgetDeadLetterReply = """
        local stored = redis.call('GET', KEYS[1])
        if stored and string.find(stored, ARGV[1], 1, true) then
            redis.call('DEL', KEYS[1])
            return 1
        end
        return 0
        """

    /// Stores a whole task (the `put` command): replaces every TaskStatus field and moves `_rev`
    /// to 1 or one more than it was. KEYS[1] is the task hash; ARGV holds the number of fields to
    /// set, the name/value pairs, then the names of the TaskStatus fields to delete. Answers the
    /// new revision.
    static let put = """
        local rev = tonumber(redis.call('HGET', KEYS[1], '_rev') or '0') or 0
        local sets = tonumber(ARGV[1])
        if #ARGV > 2 * sets + 1 then
          redis.call('HDEL', KEYS[1], unpack(ARGV, 2 * sets + 2, #ARGV))
        end
        redis.call('HSET', KEYS[1], '_rev', rev + 1, unpack(ARGV, 2, 2 * sets + 1))
        return rev + 1
        """
}
