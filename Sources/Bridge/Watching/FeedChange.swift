//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import Redis
public import TaskStatus

/// A position in the change feed: the id of the last entry seen on each shard's feed (one id with
/// one stream), written `id0,id1,...` in shard order. Redis stream ids are valid SSE ids, and
/// `XRANGE` from one returns exactly what follows it.
public struct FeedPosition: Sendable, Equatable, CustomStringConvertible {
    public var ids: [String]

    public init(ids: [String]) { self.ids = ids }

    /// Reads a position written by this bridge with `shards` shards; `nil` for anything else.
    public init?(_ text: String, shards: Int) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { String($0.trimmingSpaces) }
        guard parts.count == shards, parts.allSatisfy({ StreamEntry.parse($0) != nil && $0.contains("-") }) else { return nil }
        ids = parts
    }

    public var description: String { ids.joined(separator: ",") }
}

/// One change-feed entry as a watcher gets it: the entry's JSON, and what the watch filters need.
public struct FeedChange: Sendable {
    public let shard: Int
    public let entryId: String
    public let taskId: String
    public let rev: Int64
    /// The entry's `event` field: the notification JSON (contract section 4).
    public let data: [UInt8]
    /// The completion status after the change (``TaskIndexEntry/notCompleted`` for null); `nil`
    /// when the entry has no summary (an update announced again after the task moved on).
    let status: String?
    /// Whether the change's patch writes `completionStatus` (or the whole task): it is shown to
    /// watchers of any status, so that they see a task leave the status they watch.
    let touchesStatus: Bool
    /// The properties the filters on type, launcher and source read; `nil` until known.
    var properties: Properties?

    struct Properties: Sendable {
        var type: String?
        var launcher: String?
        var sourceId: String?
    }

    /// Reads an entry (`id`, `rev`, `request-id`, `event` fields); `nil` for one of another shape.
    init?(shard: Int, entryId: String, fields: [(field: [UInt8], value: [UInt8])]) {
        var taskId: String?
        var rev: Int64?
        var data: [UInt8]?
        for (field, value) in fields {
            switch String(decoding: field, as: UTF8.self) {
            case "id": taskId = String(decoding: value, as: UTF8.self)
            case "rev": rev = Int64(String(decoding: value, as: UTF8.self))
            case "event": data = value
            default: continue
            }
        }
        guard let taskId, let rev, let data else { return nil }
        self.shard = shard
        self.entryId = entryId
        self.taskId = taskId
        self.rev = rev
        self.data = data
        let event = try? JSONParser.accepted.parse(data)
        if case .object(let summary)? = event?["summary"] {
            status = summary["completionStatus"]?.stringValue ?? TaskIndexEntry.notCompleted
        } else {
            status = nil
        }
        touchesStatus =
            event?["patch"]?.arrayValue?.contains { operation in
                ["path", "from"].contains { key in
                    guard let path = operation[key]?.stringValue else { return false }
                    return path.isEmpty || path == "/completionStatus" || path.hasPrefix("/completionStatus/")
                }
            } ?? false
        if case .object(let task)? = event?["task"] {
            properties = Properties(
                type: task["type"]?.stringValue,
                launcher: task["launcher"]?.stringValue,
                sourceId: task["target"]?["id"]?.stringValue
            )
        }
    }

    /// Reads an `XRANGE` (or one stream of an `XREAD`) reply.
    static func list(_ reply: RedisReply, shard: Int) -> [FeedChange] {
        (reply.array ?? []).compactMap { entry in
            guard let parts = entry.array, parts.count == 2, let id = parts[0].string, let fields = parts[1].pairs else { return nil }
            return FeedChange(shard: shard, entryId: id, fields: fields)
        }
    }
}

extension ListQuery {
    /// Whether a change passes the filters. A status the entry does not tell passes (the watcher
    /// reads the task), and so does a change of the status (the task may leave the watched
    /// statuses); properties the entry does not tell, and that could not be read, do not.
    func admits(_ change: FeedChange) -> Bool {
        if let ids, !ids.contains(change.taskId) { return false }
        if let statuses, let status = change.status, !change.touchesStatus, !statuses.contains(status) { return false }
        guard readsProperties else { return true }
        guard let properties = change.properties else { return false }
        if let types, !types.contains(properties.type ?? "") { return false }
        if let launchers, !launchers.contains(properties.launcher ?? "") { return false }
        if let sourceIds, !sourceIds.contains(properties.sourceId ?? "") { return false }
        return true
    }
}

/// What one watch has sent: its position, and the highest revision of each task, so that on one
/// connection nothing repeats and a task's revisions only rise (the change feed is at least once).
public struct WatchCursor: Sendable {
    public private(set) var position: FeedPosition
    private var revisions: [String: Int64] = [:]

    public init(from position: FeedPosition) { self.position = position }

    /// The SSE id to send `change` with, or `nil` when it must not be sent: it lies at or before
    /// the position, or its task is at that revision or later already. The position moves either way.
    public mutating func accept(_ change: FeedChange) -> String? {
        guard change.shard < position.ids.count, StreamEntry.compare(position.ids[change.shard], change.entryId) else { return nil }
        position.ids[change.shard] = change.entryId
        if let seen = revisions[change.taskId], seen >= change.rev { return nil }
        revisions[change.taskId] = change.rev
        return position.description
    }
}
