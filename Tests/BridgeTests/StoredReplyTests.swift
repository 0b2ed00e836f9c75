//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import TaskStatus
import TestFixtures
import Testing

@testable import Bridge

/// What a success leaves behind (its stored reply, its notification) and how a repeat is
/// answered from it, without Redis.
@Suite("Stored replies and notifications")
struct StoredReplyTests {
    private struct Failure: Error {}

    private func record(rev: Int64, messages: Int = 0) throws -> TaskRecord {
        guard case .object(var task) = Fixtures.task("t1") else { throw Failure() }
        task["messages"] = .array(
            (0..<messages).map { k in ["type": "INFO", "localizedText": nil, "key": .string("m\(k)"), "parameters": nil] }
        )
        return TaskRecord(rev: rev, document: try TaskStatusSchema.validate(.object(task)))
    }

    private func request(_ patch: String = #"[{"op":"replace","path":"/percentComplete","value":5}]"#) -> PatchRequest {
        PatchRequest(taskId: "t1", requestId: "r1", patch: nil, patchJSON: Array(patch.utf8), storesReply: true)
    }

    @Test("the summary holds the status, the progress and the times, nothing set once or growing")
    func summary() throws {
        let summary = try JSONParser().parse(try record(rev: 3, messages: 2).summaryJSON)
        let keys = Set(summary.objectValue?.map(\.key) ?? [])
        #expect(keys == ["completionStatus", "percentComplete", "progress", "created", "modified", "launched", "completed"])
        #expect(summary["completionStatus"] == .null, "a null property is there, as null")
    }

    @Test("a success is stored without its body; an error is stored whole")
    func storedShapes() throws {
        let task = try record(rev: 8, messages: 100)
        let success = TaskResponse(status: 200, headers: [("ETag", "\"8\"")], body: task.json, rev: 8)
        let stored = success.storedReplyJSON(requestId: "r1", taskId: "t1")
        #expect(String(decoding: stored, as: UTF8.self) == #"{"requestId":"r1","taskId":"t1","status":200,"rev":8,"headers":{"ETag":"\"8\""}}"#)
        #expect(task.json.count > 5000, "what a success stores does not grow with the task")
        let failure = TaskResponse.error(404, "no task")
        #expect(failure.storedReplyJSON(requestId: "r1", taskId: "t1") == failure.replyJSON(requestId: "r1", taskId: "t1"))
        #expect(StoredReply(json: stored)?.body == nil && StoredReply(json: stored)?.rev == 8)
    }

    @Test("a repeat of a success is answered with the task now: ETag the current revision, rev the request's own")
    func repeatAfterTheTaskMovedOn() throws {
        let then = try record(rev: 8)
        let now = try record(rev: 11, messages: 3)
        let stored = TaskResponse(status: 200, headers: [("ETag", "\"8\"")], body: then.json, rev: 8)
            .storedReplyJSON(requestId: "r1", taskId: "t1")
        let answer = Batch.Answer(stored: stored, for: request(), current: now, wholeTaskLimit: 1 << 20)
        #expect(answer.response.status == 200 && answer.response.rev == 8 && answer.response.body == now.json)
        #expect(answer.response.headers.first { $0.name == "ETag" }?.value == "\"11\"")
        let published = try JSONParser().parse(answer.reply.bytes)
        #expect(published["rev"] == 8 && published["headers"]?["ETag"] == "\"11\"" && published["body"]?["messages"]?.arrayValue?.count == 3)
        // Its notification is made again with the patch alone: the task has moved on, and a
        // later revision's announcement carries its state.
        let note = try JSONParser().parse(try #require(answer.notification).bytes)
        #expect(note["rev"] == 8 && note["patch"] != nil && note["summary"] == nil && note["task"] == nil)
        #expect(answer.needsPublishing)
    }

    @Test("a repeat while the task is still at its revision announces its summary again, and the task whole when small")
    func repeatAtTheSameRevision() throws {
        let task = try record(rev: 8)
        let stored = TaskResponse(status: 200, headers: [("ETag", "\"8\"")], body: task.json, rev: 8)
            .storedReplyJSON(requestId: "r1", taskId: "t1")
        let small = Batch.Answer(stored: stored, for: request(), current: task, wholeTaskLimit: 1 << 20)
        let whole = try JSONParser().parse(task.json)
        #expect(try JSONParser().parse(try #require(small.notification).bytes)["task"] == whole)
        let large = Batch.Answer(stored: stored, for: request(), current: task, wholeTaskLimit: 10)
        let note = try JSONParser().parse(try #require(large.notification).bytes)
        let summary = try JSONParser().parse(task.summaryJSON)
        #expect(note["task"] == nil && note["summary"] == summary)
    }

    @Test("a repeat of a success whose task is gone is a 404 that says the request was applied")
    func repeatOfAGoneTask() throws {
        let task = try record(rev: 8)
        let stored = TaskResponse(status: 200, headers: [("ETag", "\"8\"")], body: task.json, rev: 8)
            .storedReplyJSON(requestId: "r1", taskId: "t1")
        let answer = Batch.Answer(stored: stored, for: request(), current: nil, wholeTaskLimit: 8192)
        #expect(answer.response.status == 404 && answer.response.rev == 8)
        #expect(String(decoding: answer.response.body, as: UTF8.self).contains("applied before, at revision 8"))
    }

    @Test("a success stored whole by an older version is answered as stored, its notification with a summary")
    func olderStoredReply() throws {
        let task = try record(rev: 8)
        let old = TaskResponse(status: 200, headers: [("ETag", "\"8\"")], body: task.json, rev: 8).replyJSON(requestId: "r1", taskId: "t1")
        let answer = Batch.Answer(stored: old, for: request(), current: nil, wholeTaskLimit: 8192)
        #expect(answer.response.status == 200 && answer.response.body == task.json && answer.reply.bytes == old)
        let note = try JSONParser().parse(try #require(answer.notification).bytes)
        let summary = try JSONParser().parse(task.summaryJSON)
        #expect(note["summary"] == summary)
    }

    @Test("the change feed's cap: entries, or the byte budget over the average entry")
    func feedBound() {
        var bound = FeedBound(maxEntries: 100_000, maxBytes: 1_000_000)
        #expect(bound.length(adding: 500) == 2000)
        #expect(bound.length(adding: 500) == 2000)
        var small = FeedBound(maxEntries: 100, maxBytes: 1_000_000)
        #expect(small.length(adding: 500) == 100, "the count caps small entries")
        var huge = FeedBound(maxEntries: 100_000, maxBytes: 1000)
        #expect(huge.length(adding: 1_000_000) == 1, "one entry at least")
        // The average moves towards new sizes, a sixteenth at a time.
        for _ in 0..<200 { _ = bound.length(adding: 5000) }
        #expect(bound.length(adding: 5000) == 200)
        #expect(String(decoding: bound.lengthText(adding: 5000), as: UTF8.self) == "200")
    }
}
