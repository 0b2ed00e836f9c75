//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import Redis
import TaskStatus

/// The atomic commit of one task's requests in a batch: the Lua script, the layout of its
/// arguments, and what its answers mean. The one place that knows the protocol; the processor
/// builds ``Call``s and reads ``Answer``s.
///
/// The script touches only keys of the task's hash slot (the task hash and the requests' reply
/// keys share the `{id}` hash tag), so it runs unchanged on Redis Cluster. It publishes the two
/// notifications itself, right after the write: channels are not keys, and each notification
/// then goes to Redis once instead of once per channel.
enum CommitScript {
    /// KEYS[1] is the task hash, KEYS[2...] the reply keys of the requests, in order.
    /// ARGV[1] is the `_rev` the answers were decided against ("" when the task had none),
    /// ARGV[2] the reply TTL in seconds, ARGV[3] and ARGV[4] the channels of all updates and of
    /// this task's (ARGV[3] empty: shard channels, and only the task's, with `SPUBLISH`; its
    /// name shares the task's hash tag, so the script may), ARGV[5] to ARGV[9] the task's place in the
    /// list index when it changes (``TaskIndexEntry``: the score, or "" for no change; the keys' stem
    /// and tag, the status, the task id: the script adds the task to that status's set and removes
    /// it from the others; never on a cluster, whose index lies in other slots: the announcement
    /// moves it there), ARGV[10] the number of hash fields to set (as name/value pairs after it, `_rev`
    /// among them when the revision moves), then the number of fields to delete and their names,
    /// then two per request: its reply to store ("" for none) and its notification ("" when it
    /// changed nothing). When a reply is stored already, the script writes nothing and answers
    /// the stored replies with the task as it is now: a success is stored without its task.
    ///
    /// A large update (``stagingThreshold``) is staged instead: ARGV[10] is `staged`, the last key
    /// is a hash the same pipeline wrote just before with the whole new task (and a TTL), and the
    /// script renames it over the task once the checks pass (else deletes it). Redis's Lua hashes
    /// every byte of every string it is handed, so a field of hundreds of KiB passed to the script
    /// costs Redis several times what `HSET` costs; renamed, the value never enters Lua.
    ///
    /// A call that announces itself (``Call/announcement``, the stream's on one Redis) carries
    /// more after those pairs: the change feed, its `MAXLEN ~`, the requests stream, the group,
    /// `PUBLISH` or `SPUBLISH`, the task id, then five per request: its revision and request id
    /// (for its change-feed entry, written when it has a notification), its reply channel and
    /// reply ("" for none), and its stream entry, acknowledged with one `XACK` at the end. The
    /// commit, the answer and the acknowledgement are then one atomic step and one command, so
    /// that the consumer need not read the answer before its next read (see
    /// ``UpdateProcessor``): only small replies go this way, since Lua copies every argument.
    ///
    /// The first write (`HSET`, `RENAME`) comes after every check, so that a refusal (`OOM`) leaves
    /// nothing half done, and replies are set with `NX`: a stored reply is never overwritten.
    static let text =
        TaskIndexEntry.placeFunction + """
            local n = #KEYS
            local stage
            if ARGV[10] == 'staged' then
              stage = KEYS[n]
              n = n - 1
            end
            if n > 1 and redis.call('EXISTS', unpack(KEYS, 2, n)) > 0 then
              if stage then redis.call('DEL', stage) end
              local out = {2, redis.call('HGETALL', KEYS[1])}
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
              if stage then redis.call('DEL', stage) end
              local hash = redis.call('HGETALL', KEYS[1])
              table.insert(hash, 1, 3)
              return hash
            end
            local i = 10
            if stage then
              if redis.call('EXISTS', stage) == 0 then return {4} end
              redis.call('RENAME', stage, KEYS[1])
              redis.call('PERSIST', KEYS[1])
              i = 11
            else
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
            end
            if ARGV[5] ~= '' then place(ARGV[6], ARGV[7], ARGV[8], ARGV[5], ARGV[9]) end
            local first = i
            for k = 2, n do
              if ARGV[i] ~= '' then
                redis.call('SET', KEYS[k], ARGV[i], 'NX', 'EX', ARGV[2])
              end
              local note = ARGV[i + 1]
              if note ~= '' then
                if ARGV[3] == '' then
                  redis.call('SPUBLISH', ARGV[4], note)
                else
                  redis.call('PUBLISH', ARGV[3], note)
                  redis.call('PUBLISH', ARGV[4], note)
                end
              end
              i = i + 2
            end
            if ARGV[i] then
              local feed, maxlen, stream, group, publish, id = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
              i = i + 6
              local acks = {}
              for k = 2, n do
                local note = ARGV[first + 2 * (k - 2) + 1]
                if note ~= '' then
                  redis.call('XADD', feed, 'MAXLEN', '~', maxlen, '*', 'id', id, 'rev', ARGV[i], 'request-id', ARGV[i + 1], 'event', note)
                end
                if ARGV[i + 2] ~= '' then redis.call(publish, ARGV[i + 2], ARGV[i + 3]) end
                if ARGV[i + 4] ~= '' then acks[#acks + 1] = ARGV[i + 4] end
                i = i + 5
              end
              if #acks > 0 then redis.call('XACK', stream, group, unpack(acks)) end
            end
            return {1}
            """

    /// A JSON text as the pipeline writes it: whole, or as a head, a body and `}` (so that a
    /// task's body, the bulk of a reply or notification, is never copied into a new buffer).
    enum Payload: Sendable, Equatable {
        case whole([UInt8])
        case framed(head: [UInt8], body: [UInt8])

        func add(to pipeline: inout RedisPipeline) {
            switch self {
            case .whole(let bytes): pipeline.add(bytes)
            case .framed(let head, let body): pipeline.addBytes(joining: head, body, Self.closingBrace)
            }
        }

        /// Adds `payload` as one argument, or an empty one for `nil`.
        static func add(_ payload: borrowing Payload?, orEmptyTo pipeline: inout RedisPipeline) {
            switch payload {
            case .some(.whole(let bytes)): pipeline.add(bytes)
            case .some(.framed(let head, let body)): pipeline.addBytes(joining: head, body, closingBrace)
            case .none: pipeline.add("")
            }
        }

        /// Its length in bytes.
        var count: Int {
            switch self {
            case .whole(let bytes): return bytes.count
            case .framed(let head, let body): return head.count + body.count + 1
            }
        }

        /// The text, joined.
        var bytes: [UInt8] {
            switch self {
            case .whole(let bytes): return bytes
            case .framed(let head, let body): return head + body + Self.closingBrace
            }
        }

        private static let closingBrace: [UInt8] = [UInt8(ascii: "}")]
    }

    /// One call: a task, what its requests' answers write, and each request's reply and
    /// notification.
    struct Call {
        var taskId: String
        /// The `_rev` the answers were decided against; "" when the task had none.
        var expectedRev: String
        /// The task after the requests and the properties whose fields change; `nil` when no
        /// request changed it (the call then only stores replies, if the revision still holds).
        var update: (record: TaskRecord, changed: TaskPropertySet)?
        /// The task's new place in the list index, when it changes (created, or its status moved).
        var index: TaskIndexEntry?
        var requests: [Request]

        struct Request {
            var requestId: String
            /// The reply as published.
            var reply: Payload
            /// The reply as stored (a success without its task); `nil` when none is stored (an
            /// HTTP request without `X-Request-Id`).
            var storedReply: [UInt8]?
            /// The notification to publish; `nil` when the request changed nothing.
            var notification: Payload?
            /// With an announcing call: the revision the request made (its change-feed entry's).
            var rev: Int64? = nil
            /// With an announcing call: the channel its reply goes to, and its stream entry.
            var replyTo: String? = nil
            var entryId: String? = nil
        }

        /// Whether the script announces the call itself (see ``text``), and how: `nil`, the
        /// processor's announcer does once the commit is answered.
        var announcement: Announcement?
    }

    /// What a call that announces itself needs beyond its requests: where its change-feed
    /// entries go, with which cap, and what its acknowledgements and replies use.
    struct Announcement {
        var feed: [UInt8]
        var maxLength: [UInt8]
        var requests: [UInt8]
        var group: [UInt8]
        var publish: [UInt8]
    }

    /// A call announces itself only while its replies and notifications stay under this many
    /// bytes in all: Lua copies every argument it is handed, which for a large task costs Redis
    /// more than the commands of a transaction.
    static let announcementLimit = 8 * 1024

    /// What every call of one processor shares.
    struct Context {
        var keys: Keys
        var replyTTL: String
        /// The channel of every update; empty with shard channels (`--pubsub sharded`).
        var updatesChannel: [UInt8]
        /// Whether the script publishes the notifications with the commit. Not when replicas must
        /// confirm the commit first: then the bridge publishes them after `WAIT`.
        var publishesNotifications = true
        /// Whether the script moves the task in the list index (one Redis: the index keys may lie
        /// in any slot there); on a cluster the announcement does.
        var indexesInScript = true
        /// The bridges' `--shards`: a task's index is its shard's.
        var shards = 1
    }

    /// Changed fields of at least this many bytes are staged (see ``text``): below it, `HSET` in
    /// the script costs less than writing the whole task.
    static let stagingThreshold = 16 * 1024

    /// How long a staged task lives if its commit never runs (the connection failed in between).
    static let stageTTL = "60000"

    /// Adds one call to `pipeline`: its `EVALSHA`, after the staged task when the update is
    /// large. Returns how many commands it added; the last is the `EVALSHA`.
    @discardableResult
    static func add(_ call: Call, sha: String, context: Context, to pipeline: inout RedisPipeline) -> Int {
        var stage: String?
        if let (record, changed) = call.update, changedBytes(record, changed) >= stagingThreshold {
            let name = context.keys.stagePrefix + call.taskId + "}:" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
            pipeline.begin(hset)
            pipeline.add(name)
            pipeline.add(TaskProperty.revisionField)
            pipeline.add(record.rev)
            for property in TaskProperty.allCases {
                record.withField(property) { field in
                    guard let field else { return }
                    pipeline.add(property.rawValue)
                    pipeline.addBytes(field)
                }
            }
            pipeline.begin(pexpire)
            pipeline.add(name)
            pipeline.add(stageTTL)
            stage = name
        }
        pipeline.begin(evalsha)
        pipeline.add(sha)
        pipeline.add(call.requests.count + 1 + (stage == nil ? 0 : 1))
        pipeline.add(joining: context.keys.taskPrefix, call.taskId, "}")
        for request in call.requests { pipeline.add(joining: context.keys.replyPrefix, call.taskId, "}:", request.requestId) }
        if let stage { pipeline.add(stage) }
        pipeline.add(call.expectedRev)
        pipeline.add(context.replyTTL)
        pipeline.add(context.updatesChannel)
        pipeline.add(joining: context.keys.updatesPrefix, call.taskId, context.keys.updatesSuffix)
        if let index = call.index, context.indexesInScript {
            let keys = context.keys.forTask(call.taskId, of: context.shards)
            pipeline.add(String(index.score))
            pipeline.add(keys.indexStem)
            pipeline.add(keys.indexTag)
            pipeline.add(index.status)
            pipeline.add(call.taskId)
        } else {
            for _ in 0..<5 { pipeline.add("") }
        }
        func addRequests() {
            for k in call.requests.indices {
                pipeline.add(call.requests[k].storedReply ?? [])
                Payload.add(context.publishesNotifications ? call.requests[k].notification : nil, orEmptyTo: &pipeline)
            }
            guard let announcement = call.announcement else { return }
            for word in [announcement.feed, announcement.maxLength, announcement.requests, announcement.group, announcement.publish] {
                pipeline.add(word)
            }
            pipeline.add(call.taskId)
            for request in call.requests {
                pipeline.add(request.rev.map(String.init) ?? "")
                pipeline.add(request.requestId)
                if let replyTo = request.replyTo {
                    pipeline.add(replyTo)
                    request.reply.add(to: &pipeline)
                } else {
                    pipeline.add("")
                    pipeline.add("")
                }
                pipeline.add(request.entryId ?? "")
            }
        }
        if stage != nil {
            pipeline.add(staged)
            addRequests()
            return 3
        }
        var deletions = TaskPropertySet()
        if let (record, changed) = call.update {
            var sets = 1
            for property in changed where record.withField(property, { $0 != nil }) { sets += 1 }
            pipeline.add(sets)
            pipeline.add(TaskProperty.revisionField)
            pipeline.add(record.rev)
            for property in changed {
                record.withField(property) { field in
                    if let field {
                        pipeline.add(property.rawValue)
                        pipeline.addBytes(field)
                    } else {
                        deletions.insert(property)
                    }
                }
            }
        } else {
            pipeline.add(0)
        }
        pipeline.add(deletions.count)
        for property in deletions { pipeline.add(property.rawValue) }
        addRequests()
        return 1
    }

    /// The bytes of the changed fields' values.
    static func changedBytes(_ record: TaskRecord, _ changed: TaskPropertySet) -> Int {
        var total = 0
        for property in changed { total += record.valueRange(property)?.count ?? 0 }
        return total
    }

    /// What the script answered.
    enum Answer: Equatable {
        /// Written: the task, the replies, and the notifications published.
        case committed
        /// Nothing written: these requests (by position in the call, from 0) have stored replies,
        /// so they were answered before; the others must be decided again. With the task as it
        /// is now, as `HGETALL` pairs (none: the task is gone), which answers stored successes.
        case answeredBefore([Stored], current: [HashField])
        /// Nothing written: `_rev` is not what the answers were decided against. The task as it is
        /// now, as `HGETALL` pairs (none: the task is gone).
        case revisionMoved([HashField])
        /// Nothing written: the staged task was not there (Redis refused to store it, memory
        /// full): the requests are tried again.
        case stageMissing
        /// An error reply: the script did not run, or stopped before its first write.
        case failed(String)

        struct Stored: Equatable {
            var position: Int
            var reply: [UInt8]
        }

        struct HashField: Equatable {
            var field: [UInt8]
            var value: [UInt8]
        }
    }

    /// Reads one call's reply. A reply of another shape is an error: the script is ours, so that
    /// is a bug or another script under our name.
    static func decode(_ reply: RedisValue, requestCount: Int) -> Answer {
        if let message = reply.errorMessage { return .failed(message) }
        guard reply.kind == .array else { return .failed("the commit script answered \(reply.reply)") }
        var parts = reply.elements.makeIterator()
        switch parts.next()?.int {
        case 1:
            return .committed
        case 2:
            guard let hash = parts.next(), hash.kind == .array else { return .failed("the commit script answered no task with its stored replies") }
            guard let current = hashFields(hash) else { return .failed("the commit script answered an odd hash") }
            var stored: [Answer.Stored] = []
            while let position = parts.next()?.int, let bytes = parts.next()?.bytes {
                guard position >= 1, position <= requestCount else { return .failed("the commit script answered position \(position)") }
                stored.append(Answer.Stored(position: Int(position) - 1, reply: Array(bytes)))
            }
            return .answeredBefore(stored, current: current)
        case 3:
            var fields: [Answer.HashField] = []
            while let field = parts.next()?.bytes {
                guard let value = parts.next()?.bytes else { return .failed("the commit script answered an odd hash") }
                fields.append(Answer.HashField(field: Array(field), value: Array(value)))
            }
            return .revisionMoved(fields)
        case 4:
            return .stageMissing
        default:
            return .failed("the commit script answered \(reply.reply)")
        }
    }

    private static func hashFields(_ hash: RedisValue) -> [Answer.HashField]? {
        var fields: [Answer.HashField] = []
        var parts = hash.elements.makeIterator()
        while let field = parts.next()?.bytes {
            guard let value = parts.next()?.bytes else { return nil }
            fields.append(Answer.HashField(field: Array(field), value: Array(value)))
        }
        return fields
    }

    private static let evalsha = Array("EVALSHA".utf8)
    private static let hset = Array("HSET".utf8)
    private static let pexpire = Array("PEXPIRE".utf8)
    private static let staged = Array("staged".utf8)
}
