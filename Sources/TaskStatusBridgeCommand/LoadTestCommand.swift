//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import ArgumentParser
import Foundation
public import LoadTest
import Redis

extension LoadOptions.Path: ExpressibleByArgument {}

/// `loadtest`: drive a running bridge and measure it.
struct LoadTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Drive a running bridge with a realistic mix of updates and check every reply.",
        discussion: """
            Creates its own tasks, sends progress updates, appended messages, completions and a share of \
            invalid patches on the stream or HTTP path, at a fixed rate (open loop: latency is measured from \
            when each request was due, so a stalled bridge cannot hide) or as fast as the bridge answers. \
            Prints progress every second, then throughput, latency percentiles and counts by status; exits 1 \
            when any reply is missing or wrong. Removes its tasks and stored replies afterwards.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "stream or http.")
    var path: LoadOptions.Path = .stream

    @Option(help: "Requests per second on an open-loop schedule; 0 sends as fast as the bridge answers.")
    var rate: Double = 1000

    @Option(help: "Seconds to send for (at most 3600).")
    var duration: Double = 10

    @Option(help: "The most requests to send (the run ends at whichever of this and --duration comes first).")
    var count: Int?

    @Option(help: "How many tasks the requests spread over.")
    var tasks = 1000

    @Option(help: "The share of invalid patches, answered 400 (0 to 1).")
    var invalidShare = 0.05

    @Flag(help: "Send progress updates instead of appended messages, so that the tasks keep their size (for long runs).")
    var noMessages = false

    @Option(help: "Stream path: the most requests outstanding with --rate 0. HTTP path: connections.")
    var concurrency: Int?

    @Option(help: "The HTTP API's base URL, optionally with a version prefix such as /v2026.")
    var httpURL = "http://127.0.0.1:8080"

    @Flag(help: "Leave out X-Request-Id on HTTP requests, as SailPoint's SDKs do (their replies are then not stored).")
    var noRequestId = false

    @Option(help: "The authorization value sent with every request, e.g. \"Bearer <JWT>\" (env TASKSTATUS_AUTHORIZATION).")
    var authorization: String?

    @Option(help: "Seconds to wait for the last replies.")
    var replyTimeout: Double = 10

    @Option(help: "Seed of the request mix: the same seed sends the same requests.")
    var seed: UInt64 = 1

    @Option(help: "Measure the CPU time of this process (the bridge) over the run.")
    var bridgePid: Int32?

    @Option(help: "Write the report as JSON to this file (- for standard output instead of the text report).")
    var json: String?

    @Option(help: "Write an SVG chart of latency and throughput over time to this file.")
    var chart: String?

    @Flag(help: "Leave the load test's tasks and stored replies in Redis.")
    var keep = false

    @Flag(help: "No progress lines.")
    var quiet = false

    func validate() throws {
        guard rate >= 0, rate <= 1_000_000 else { throw ValidationError("--rate must be between 0 and 1000000") }
        guard duration > 0, duration <= LoadOptions.maximumSeconds else {
            throw ValidationError("--duration must be more than 0 and at most 3600 seconds")
        }
        if let count {
            guard count > 0, count <= LoadOptions.maximumCount else { throw ValidationError("--count must be 1 to \(LoadOptions.maximumCount)") }
        }
        guard tasks > 0, tasks <= 1_000_000 else { throw ValidationError("--tasks must be 1 to 1000000") }
        guard (0...1).contains(invalidShare) else { throw ValidationError("--invalid-share must be between 0 and 1") }
        if let concurrency { guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be 1 to 10000") } }
        guard replyTimeout > 0, replyTimeout <= 600 else { throw ValidationError("--reply-timeout must be more than 0 and at most 600 seconds") }
    }

    func run() async throws {
        let redis = try connection.redisConfiguration()
        let options = LoadOptions(
            path: path,
            rate: rate > 0 ? rate : nil,
            durationSeconds: duration,
            count: count,
            concurrency: concurrency ?? (path == .http ? 32 : 1000),
            replyTimeoutSeconds: replyTimeout,
            authorization: Setting("--authorization", "TASKSTATUS_AUTHORIZATION", authorization).value,
            httpURL: httpURL,
            httpRequestIds: !noRequestId,
            runId: "lt\(UInt32.random(in: 0...UInt32.max))"
        )
        var runner = LoadTestRunner(
            redis: redis,
            prefix: try connection.resolvedPrefix(),
            options: options,
            taskCount: tasks,
            invalidShare: invalidShare,
            seed: seed,
            pubsub: try connection.resolvedPubSub()
        )
        runner.shards = try connection.resolvedShards()
        runner.watchedProcess = bridgePid
        runner.keepData = keep
        runner.appendsMessages = !noMessages
        let quiet = self.quiet
        let report: LoadReport
        do {
            report = try await runner.run { line in
                if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) }
            }
        } catch {
            exitWithMessage("error: the load test stopped: \(error)", status: 2)
        }
        if let json {
            let data = try report.json()
            if json == "-" {
                FileHandle.standardOutput.write(data + Data("\n".utf8))
            } else {
                try data.write(to: URL(fileURLWithPath: json))
            }
        }
        if json != "-" { print(report.text) }
        if let chart { try Data(LatencyChart.svg(report).utf8).write(to: URL(fileURLWithPath: chart)) }
        if !report.summary.isClean { Foundation.exit(1) }
    }
}
