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

    /// Deletes a task (KEYS[1]) only if its `_rev` is still ARGV[1] and it is completed: an update
    /// since it was read keeps it. Answers 1 when it deleted it.
    static let removeIfAt = """
        if redis.call('HGET', KEYS[1], '_rev') == ARGV[1] and redis.call('HEXISTS', KEYS[1], 'completionStatus') == 1 then
            redis.call('DEL', KEYS[1])
            return 1
        end
        return 0
        """
}
