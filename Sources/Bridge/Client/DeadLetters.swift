//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Redis

/// One entry of the dead-letter stream: a request that bridges kept failing to finish.
public struct DeadLetter: Sendable {
    /// Its id in the dead-letter stream.
    public let id: String
    /// The dead-letter stream it is in (one per shard with `--shards`).
    public let stream: String
    /// The request's fields as the producer wrote them, byte for byte.
    public let fields: [(field: [UInt8], value: [UInt8])]
    /// Why it was moved, its id in the request stream, and how often it had been delivered.
    public let reason: String
    public let originalEntryId: String
    public let deliveries: Int

    /// The task and the request id the caller knows it by, read as the bridge read them when it
    /// dead-lettered the entry (and stored its 500 under them): the `request-id`, else the entry's
    /// id in the request stream.
    public let taskId: String
    public let requestId: String

    /// The text that only the 500 reply of a dead-lettered request contains.
    static let replyMarker = "the request was moved to the dead-letter stream"

    init?(entry: StreamEntry, stream: String) {
        guard let raw = entry.fields else { return nil }
        var fields: [(field: [UInt8], value: [UInt8])] = []
        var reason = ""
        var original = ""
        var deliveries = 0
        for (field, value) in raw {
            switch String(decoding: field, as: UTF8.self) {
            case "dead-reason": reason = String(decoding: value, as: UTF8.self)
            case "dead-entry-id": original = String(decoding: value, as: UTF8.self)
            case "dead-deliveries": deliveries = Int(String(decoding: value, as: UTF8.self)) ?? 0
            default: fields.append((Array(field), Array(value)))
            }
        }
        // Neither limits nor the experimental flag change the task id or the request id.
        let request = PatchRequestDecoder(limits: RequestLimits(), requireExperimentalFlag: false).decode(
            entryId: original,
            fields: fields.map { ($0.field[...], $0.value[...]) }
        )
        self.taskId = request.taskId
        self.requestId = request.requestId
        self.id = entry.id
        self.stream = stream
        self.fields = fields
        self.reason = reason
        self.originalEntryId = original
        self.deliveries = deliveries
    }
}

extension TaskStatusClient {
    /// The oldest `count` entries of the dead-letter stream (of each shard's, with shards).
    public func deadLetters(count: Int) async throws -> [DeadLetter] {
        var letters: [DeadLetter] = []
        for shard in 0..<shards {
            let stream = keys.forShard(shard, of: shards).dead
            let reply = try await redis.value(of: RedisCommand("XRANGE", stream, "-", "+", "COUNT", max(1, count)))
            letters += StreamEntry.list(reply).compactMap { DeadLetter(entry: $0, stream: stream) }
        }
        return letters
    }

    /// Moves a dead letter back to the request stream, as the producer wrote it, and returns its new
    /// entry id.
    ///
    /// The request keeps the id its caller knows (an entry without `request-id` gets its original
    /// entry id as one), and the 500 reply stored when it was dead-lettered is forgotten first, so
    /// that the bridge applies the request instead of answering that 500 again. The entry is added
    /// before it is removed from the dead-letter stream: a crash in between leaves it in both, and
    /// replaying it twice is harmless, because the second copy is answered from the stored reply.
    public func replay(_ letter: DeadLetter) async throws -> String {
        let replyKey = keys.reply(taskId: letter.taskId, requestId: letter.requestId)
        _ = try await redis.execute(RedisCommand("EVAL", Scripts.forgetDeadLetterReply, 1, replyKey, DeadLetter.replyMarker)).get()
        var add = RedisCommand("XADD", requestStream(forTask: letter.taskId), "*")
        for (field, value) in letter.fields {
            add.append(field)
            add.append(value)
        }
        if letter.requestId == letter.originalEntryId, !letter.originalEntryId.isEmpty {
            add.append("request-id")
            add.append(letter.originalEntryId)
        }
        guard let id = try await redis.execute(add).get().string else { throw Failure(description: "XADD did not answer an entry id") }
        _ = try await redis.execute(RedisCommand("XDEL", letter.stream, letter.id)).get()
        return id
    }
}
