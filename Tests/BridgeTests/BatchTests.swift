//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import TaskStatus
import Testing

@testable import Bridge

/// How a batch is planned and answered, without Redis.
@Suite("A batch's books")
struct BatchTests {
    private func request(_ task: String, _ id: String, stores: Bool = true, rejected: Bool = false) -> PatchRequest {
        PatchRequest(
            taskId: task,
            requestId: id,
            patch: nil,
            patchJSON: [],
            rejection: rejected ? .error(400, "bad") : nil,
            storesReply: stores
        )
    }

    @Test("a copy of an earlier request id of the same task repeats it; another task's, or an unstored one, does not")
    func repeats() {
        let batch = Batch([
            request("a", "r1"), request("b", "r1"), request("a", "r1"), request("a", "r1", rejected: true), request("a", "r2", stores: false),
            request("a", "r2", stores: false), request("b", "r1"),
        ])
        #expect(batch.primaryOf == [-1, -1, 0, 0, -1, -1, 1])
    }

    @Test("primaries are sorted: refused ones and ids that name no task are decided without their task, the rest by task in order")
    func groups() {
        var batch = Batch([
            request("a", "1"), request("b", "2"), request("a", "3", rejected: true), request("", "4"), request("a", "5"), request("a", "1"),
        ])
        batch.formGroups()
        #expect(batch.early == [2, 3])
        #expect(batch.groups.map(\.taskId) == ["a", "b"])
        #expect(batch.groups.map(\.indices) == [[0, 4], [1]])
    }

    @Test("a repeat gets its first copy's reply without a second announcement, or its deferral")
    func answeringRepeats() {
        var batch = Batch([request("a", "r"), request("a", "r"), request("b", "s"), request("b", "s")])
        var answer = Batch.Answer(TaskResponse(status: 200, body: Array("{}".utf8), rev: 2), for: batch.requests[0])
        answer.notification = .whole(Array("n".utf8))
        batch.answer(0, answer)
        batch.defer(2, .refused("OOM command not allowed"))
        batch.answerRepeats()
        #expect(
            batch.outcomes == [
                .answered(answer.response), .answered(answer.response), .deferred(.refused("OOM command not allowed")),
                .deferred(.refused("OOM command not allowed")),
            ]
        )
        #expect(batch.answers[1].reply == answer.reply)
        #expect(batch.answers[1].notification == nil)
    }

    @Test("a request left neither answered nor deferred is deferred, never answered with something made up")
    func unanswered() {
        let batch = Batch([request("a", "r")])
        #expect(batch.outcomes == [.deferred(Deferral(.unanswered, "the request was left unanswered"))])
    }
}
