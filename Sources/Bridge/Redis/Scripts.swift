//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// The server-side scripts besides the commit (``CommitScript``). Each touches the keys of one task
/// only, which share the `{id}` hash tag, so that they run unchanged on Redis Cluster.
enum Scripts {
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
