//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import Foundation
import JSONPatch
import LoadTest
import Redis
import Testing

@Suite(
    "The load generator against a real bridge",
    .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"),
    .timeLimit(.minutes(2))
)
struct LoadTestTests {
    func runner(_ space: TestSpace, _ options: LoadOptions) -> LoadTestRunner {
        LoadTestRunner(redis: TestRedis.configuration, prefix: space.prefix, options: options, taskCount: 20, invalidShare: 0.2, seed: 7)
    }

    @Test("on both paths, at a fixed rate and as fast as it goes, every request gets one right answer", arguments: LoadOptions.Path.allCases)
    func clean(path: LoadOptions.Path) async throws {
        try await TestSpace.with { space in
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                for rate in [200.0, nil] {
                    let options = LoadOptions(
                        path: path,
                        rate: rate,
                        durationSeconds: 5,
                        count: 300,
                        concurrency: 8,
                        replyTimeoutSeconds: 5,
                        httpURL: base + "/v2026",
                        runId: "lt\(UInt32.random(in: 0...UInt32.max))"
                    )
                    let report = try await runner(space, options).run { _ in }
                    let summary = report.summary
                    #expect(summary.sent == 300)
                    #expect(summary.answered == 300)
                    #expect(summary.isClean, "\(report.text)")
                    #expect((summary.statuses["400"] ?? 0) > 20, "the invalid share is answered 400")
                    #expect(summary.statuses["200", default: 0] + summary.statuses["400", default: 0] == 300)
                    #expect(summary.latencyMilliseconds.p50 > 0 && summary.latencyMilliseconds.p50 <= summary.latencyMilliseconds.p99)
                    #expect(summary.latencyMilliseconds.p99 <= summary.latencyMilliseconds.max)
                    if rate != nil { #expect(summary.seconds >= 1.4, "300 requests at 200/s take 1.5 s: the schedule is kept") }
                    let json = try JSONValue(parsing: Array(try report.json()))
                    #expect(json["summary"]?["answered"] == 300)
                    #expect(LatencyChart.svg(report).hasPrefix("<svg"))
                }
                // Its tasks and stored replies are gone afterwards.
                let left = try await space.run("KEYS", "\(space.prefix):task:*").array ?? []
                #expect(left.isEmpty)
                let replies = try await space.run("KEYS", "\(space.prefix):reply:*").array ?? []
                #expect(replies.isEmpty)
            }
        }
    }

    @Test("without a bridge, every request is reported missing")
    func missing() async throws {
        try await TestSpace.with { space in
            let options = LoadOptions(
                path: .stream,
                rate: 500,
                durationSeconds: 5,
                count: 50,
                concurrency: 8,
                replyTimeoutSeconds: 0.5,
                runId: "ltmissing"
            )
            let report = try await runner(space, options).run { _ in }
            #expect(report.summary.missing == 50)
            #expect(report.summary.answered == 0)
            #expect(!report.summary.isClean)
        }
    }

    @Test("wrong answers are counted as mismatches, with examples")
    func mismatches() async throws {
        try await TestSpace.with { space in
            // A bridge that wants a token the load test does not send: every answer is a 401.
            try await RunningBridge.with(space, configure: { $0.auth = Tokens.configuration }) { bridge in
                let base = try #require(await bridge.baseURL())
                for path in LoadOptions.Path.allCases {
                    let options = LoadOptions(
                        path: path,
                        rate: nil,
                        durationSeconds: 5,
                        count: 40,
                        concurrency: 4,
                        replyTimeoutSeconds: 5,
                        httpURL: base,
                        runId: "lt\(UInt32.random(in: 0...UInt32.max))"
                    )
                    let report = try await runner(space, options).run { _ in }
                    #expect(report.summary.statuses["401"] == 40)
                    #expect(report.summary.mismatches == 40)
                    #expect(report.summary.examples.first?.contains("got 401") == true)
                    #expect(!report.summary.isClean)
                }
            }
        }
    }
}
