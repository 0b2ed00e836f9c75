//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

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
