//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import LoadTest
import Testing

/// The load generator's request mix and its checks, without Redis.
@Suite("The load generator's workload")
struct WorkloadTests {
    @Test("the same seed gives the same requests, and each check accepts only the right reply")
    func workload() throws {
        let workload = Workload(taskCount: 10, taskIdPrefix: "t", invalidShare: 0.1, seed: 3)
        let again = Workload(taskCount: 10, taskIdPrefix: "t", invalidShare: 0.1, seed: 3)
        var kinds: [Workload.Kind: Int] = [:]
        for n in 0..<2000 {
            let request = workload.request(n)
            #expect(request.patch == again.request(n).patch)
            #expect(request.taskIndex == workload.taskIndex(of: n))
            kinds[request.kind, default: 0] += 1
            _ = try JSONValue(parsing: request.patch)
        }
        #expect(Workload.Kind.allCases.allSatisfy { (kinds[$0] ?? 0) > 100 })
        let progress = (0..<100).map(workload.request).first { $0.kind == .progress }!
        let id = JSONValue.string(workload.taskId(progress.taskIndex))
        let right: JSONValue = ["id": id, "percentComplete": .integer(Int64(progress.step % 100)), "progress": .string("Step \(progress.step)")]
        #expect(workload.check(progress, status: 200, body: right) == nil)
        #expect(workload.check(progress, status: 200, body: ["id": id, "percentComplete": 101, "progress": "Step 0"]) != nil)
        #expect(workload.check(progress, status: 400, body: right) != nil)
        #expect(workload.check(progress, status: 429, body: ["message": " Rate Limit Exceeded "]) == nil)
        let invalid = (0..<100).map(workload.request).first { $0.kind == .invalid }!
        #expect(workload.check(invalid, status: 200, body: right) != nil)
        #expect(workload.check(invalid, status: 400, body: ["detailCode": "400.1 Bad Request Content", "causes": [["text": "x"]]]) == nil)
    }

    @Test("without appended messages the mix sends progress updates in their place, and tasks keep their size")
    func workloadWithoutMessages() {
        var steady = Workload(taskCount: 10, taskIdPrefix: "t", invalidShare: 0.1, seed: 3)
        steady.appendsMessages = false
        let usual = Workload(taskCount: 10, taskIdPrefix: "t", invalidShare: 0.1, seed: 3)
        var replaced = 0
        for n in 0..<2000 {
            let request = steady.request(n)
            #expect(request.kind != .message)
            #expect(!String(decoding: request.patch, as: UTF8.self).contains("/messages/-"))
            if usual.request(n).kind == .message {
                #expect(request.kind == .progress)
                replaced += 1
            } else {
                #expect(request.patch == usual.request(n).patch)
            }
        }
        #expect(replaced > 100)
    }
}
