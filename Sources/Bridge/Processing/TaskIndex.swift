//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Redis
public import TaskStatus

/// Where a task sits in the list index (contract section 9): one sorted set per completion
/// status (`none` for a task not completed), scored by `created` in Unix milliseconds, its members
/// the task ids. A task is in exactly one of them; `ZRANGE ... REV` over one set is the list of
/// that status, newest first, ties by id. One member per task, nothing else: the index costs what
/// a sorted-set member costs, and the list reads the tasks themselves for everything else.
public struct TaskIndexEntry: Sendable, Equatable {
    /// The completion status, as stored (upper case), or ``TaskIndexEntry/notCompleted``.
    public var status: String
    /// `created` in Unix milliseconds (0 when it does not read, which validation prevents).
    public var score: Int64

    public init(status: String, score: Int64) {
        self.status = status
        self.score = score
    }

    /// The entry of a task as it is.
    public init(_ record: TaskRecord) {
        status = record.field(.completionStatus).map { String(decoding: $0, as: UTF8.self) } ?? Self.notCompleted
        score = record.field(.created).flatMap { RFC3339.unixMilliseconds(of: String(decoding: $0, as: UTF8.self)) } ?? 0
    }

    /// The name of the set of tasks whose `completionStatus` is null.
    public static let notCompleted = "none"

    /// Every status a set exists for, `none` first.
    public static let statuses: [String] = [notCompleted] + TaskProperty.completionStatus.allowedValues!
}

extension TaskIndexEntry {
    /// The commands that put `taskId` in this status's set of `keys` and take it out of the
    /// others: single-key commands (a cluster routes each by slot), idempotent, so that sending
    /// them again after a crash changes nothing.
    public func placing(_ taskId: String, in keys: Keys) -> [RedisCommand] {
        Self.statuses.map { candidate in
            candidate == status
                ? RedisCommand("ZADD", keys.index(candidate), String(score), taskId) : RedisCommand("ZREM", keys.index(candidate), taskId)
        }
    }

    /// The same for a script, as a Lua function of the index keys' stem and tag, the status, the
    /// score and the task id; a script that moves a task in the index starts with it.
    static let placeFunction = """
        local function place(stem, tag, status, score, id)
          for _, s in ipairs({\(statuses.map { "'\($0)'" }.joined(separator: ", "))}) do
            if s == status then
              redis.call('ZADD', stem .. s .. tag, score, id)
            else
              redis.call('ZREM', stem .. s .. tag, id)
            end
          end
        end

        """
}
