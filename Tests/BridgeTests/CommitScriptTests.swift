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
import TestFixtures
import Testing

@testable import Bridge

/// The commit protocol's arguments and answers, without Redis.
@Suite("The commit script's protocol")
struct CommitScriptTests {
    let context = CommitScript.Context(keys: Keys(prefix: "p"), replyTTL: "60", updatesChannel: Array("p:updates".utf8))

    private func strings(_ pipeline: RedisPipeline) -> [String] {
        pipeline.arguments(of: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("a call lays out keys, revision, TTL, channels, fields to set and delete, then a reply and a notification per request")
    func encoding() throws {
        let record = TaskRecord(rev: 5, document: try TaskStatusSchema.validate(Fixtures.task("t1")))
        var changed = TaskPropertySet()
        changed.insert(.progress)
        changed.insert(.completed)
        let call = CommitScript.Call(
            taskId: "t1",
            expectedRev: "4",
            update: (record, changed),
            index: TaskIndexEntry(status: "none", score: 1_594_502_595_000),
            requests: [
                .init(
                    requestId: "r1",
                    reply: .framed(head: Array("{\"a\":".utf8), body: Array("1".utf8)),
                    storedReply: Array("{\"a\":0}".utf8),
                    notification: .whole(Array("n1".utf8))
                ),
                .init(requestId: "r2", reply: .whole(Array("not stored".utf8)), storedReply: nil, notification: nil),
            ]
        )
        var pipeline = RedisPipeline()
        CommitScript.add(call, sha: "abc", context: context, to: &pipeline)
        #expect(
            strings(pipeline) == [
                "EVALSHA", "abc", "3", "p:task:{t1}", "p:reply:{t1}:r1", "p:reply:{t1}:r2", "4", "60", "p:updates", "p:updates:t1",
                // The task's new place in the list index: score, the keys' stem and tag, status, id.
                "1594502595000", "p:index:", "", "none", "t1",
                // _rev and progress are set; completed is null in the fixture: its field is deleted.
                "2", "_rev", "5", "progress", "Started", "1", "completed",
                // The reply as stored (a success without its task), not as published.
                "{\"a\":0}", "n1", "", "",
            ]
        )
    }

    @Test("a large update stages the whole new task (with a TTL) and the script renames it: the value never enters Lua")
    func staged() throws {
        guard case .object(var task) = Fixtures.task("t1") else { return }
        task["description"] = .string(String(repeating: "d", count: CommitScript.stagingThreshold))
        let record = TaskRecord(rev: 5, document: try TaskStatusSchema.validate(.object(task)))
        var changed = TaskPropertySet()
        changed.insert(.description)
        let call = CommitScript.Call(
            taskId: "t1",
            expectedRev: "4",
            update: (record, changed),
            requests: [.init(requestId: "r1", reply: .whole(Array("a".utf8)), storedReply: Array("s".utf8), notification: .whole(Array("n".utf8)))]
        )
        var pipeline = RedisPipeline()
        #expect(CommitScript.add(call, sha: "abc", context: context, to: &pipeline) == 3)
        let stage = pipeline.arguments(of: 0).map { String(decoding: $0, as: UTF8.self) }
        #expect(stage[0] == "HSET" && stage[1].hasPrefix("p:stage:{t1}:") && stage[2] == "_rev" && stage[3] == "5")
        let written = Dictionary(uniqueKeysWithValues: stride(from: 2, to: stage.count - 1, by: 2).map { (stage[$0], stage[$0 + 1]) })
        #expect(written["description"]?.count == CommitScript.stagingThreshold && written["id"] == "t1")
        #expect(written["completed"] == nil, "a null property has no field")
        #expect(pipeline.arguments(of: 1).map { String(decoding: $0, as: UTF8.self) } == ["PEXPIRE", stage[1], CommitScript.stageTTL])
        let eval = pipeline.arguments(of: 2).map { String(decoding: $0, as: UTF8.self) }
        #expect(
            eval == [
                "EVALSHA", "abc", "3", "p:task:{t1}", "p:reply:{t1}:r1", stage[1], "4", "60", "p:updates", "p:updates:t1", "", "", "", "", "",
                "staged",
                "s", "n",
            ]
        )
        // A small change of the same task goes through the script.
        var small = TaskPropertySet()
        small.insert(.progress)
        var direct = RedisPipeline()
        #expect(
            CommitScript.add(
                CommitScript.Call(taskId: "t1", expectedRev: "4", update: (record, small), requests: []),
                sha: "abc",
                context: context,
                to: &direct
            ) == 1
        )
    }

    @Test(
        "a call that announces itself adds the feed, its cap, the stream, the group, the publish word and the task id, then per request its revision, request id, reply channel, reply and entry"
    )
    func announcing() {
        var call = CommitScript.Call(
            taskId: "t1",
            expectedRev: "",
            update: nil,
            requests: [
                .init(
                    requestId: "r1",
                    reply: .framed(head: Array("{\"a\":".utf8), body: Array("1".utf8)),
                    storedReply: Array("s1".utf8),
                    notification: .whole(Array("n1".utf8)),
                    rev: 7,
                    replyTo: "c1",
                    entryId: "1-1"
                ),
                .init(requestId: "r2", reply: .whole(Array("e".utf8)), storedReply: Array("s2".utf8), notification: nil, entryId: "1-2"),
            ]
        )
        call.announcement = CommitScript.Announcement(
            feed: Array("p:events".utf8),
            maxLength: Array("100".utf8),
            requests: Array("p:requests".utf8),
            group: Array("p-bridge".utf8),
            publish: Array("PUBLISH".utf8)
        )
        var pipeline = RedisPipeline()
        CommitScript.add(call, sha: "abc", context: context, to: &pipeline)
        #expect(
            strings(pipeline) == [
                "EVALSHA", "abc", "3", "p:task:{t1}", "p:reply:{t1}:r1", "p:reply:{t1}:r2", "", "60", "p:updates", "p:updates:t1",
                "", "", "", "", "", "0", "0",
                "s1", "n1", "s2", "",
                "p:events", "100", "p:requests", "p-bridge", "PUBLISH", "t1",
                // The reply as published; a request without a reply channel gets none, its entry is acknowledged all the same.
                "7", "r1", "c1", "{\"a\":1}", "1-1",
                "", "r2", "", "", "1-2",
            ]
        )
    }

    @Test("a call that changes nothing only stores its replies")
    func nothingChanged() {
        let call = CommitScript.Call(
            taskId: "t1",
            expectedRev: "",
            update: nil,
            requests: [.init(requestId: "r", reply: .whole(Array("y".utf8)), storedReply: Array("x".utf8), notification: nil)]
        )
        var pipeline = RedisPipeline()
        CommitScript.add(call, sha: "abc", context: context, to: &pipeline)
        #expect(
            strings(pipeline) == [
                "EVALSHA", "abc", "2", "p:task:{t1}", "p:reply:{t1}:r", "", "60", "p:updates", "p:updates:t1", "", "", "", "", "", "0", "0", "x", "",
            ]
        )
    }

    private func decode(_ resp: String, requests: Int = 3) throws -> CommitScript.Answer {
        CommitScript.decode(try RedisReplies(parsing: Array(resp.utf8))[0], requestCount: requests)
    }

    @Test("answers: committed, answered before (by position, with the task now), revision moved (the hash), refused")
    func decoding() throws {
        #expect(try decode("*1\r\n:1\r\n") == .committed)
        #expect(
            try decode("*6\r\n:2\r\n*2\r\n$4\r\n_rev\r\n$1\r\n9\r\n:1\r\n$2\r\nr1\r\n:3\r\n$2\r\nr3\r\n")
                == .answeredBefore(
                    [.init(position: 0, reply: Array("r1".utf8)), .init(position: 2, reply: Array("r3".utf8))],
                    current: [.init(field: Array("_rev".utf8), value: Array("9".utf8))]
                )
        )
        #expect(
            try decode("*4\r\n:2\r\n*0\r\n:1\r\n$2\r\nr1\r\n") == .answeredBefore([.init(position: 0, reply: Array("r1".utf8))], current: []),
            "the task is gone"
        )
        #expect(
            try decode("*5\r\n:3\r\n$4\r\n_rev\r\n$1\r\n9\r\n$8\r\nprogress\r\n$1\r\nx\r\n")
                == .revisionMoved([
                    .init(field: Array("_rev".utf8), value: Array("9".utf8)), .init(field: Array("progress".utf8), value: Array("x".utf8)),
                ])
        )
        #expect(try decode("*1\r\n:3\r\n") == .revisionMoved([]), "the task is gone")
        #expect(try decode("-OOM command not allowed\r\n") == .failed("OOM command not allowed"))
        #expect(try decode("*1\r\n:4\r\n") == .stageMissing)
    }

    @Test(
        "answers of another shape are failures, never guesses",
        arguments: [
            "*3\r\n:2\r\n:9\r\n$2\r\nr1\r\n", "*4\r\n:2\r\n*0\r\n:9\r\n$2\r\nr1\r\n", "*2\r\n:3\r\n$4\r\n_rev\r\n", "*1\r\n:7\r\n", "+OK\r\n",
            ":1\r\n",
        ]
    )
    func malformed(resp: String) throws {
        guard case .failed = try decode(resp) else {
            Issue.record("\(resp.debugDescription) was read as an answer")
            return
        }
    }
}
