//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Bridge
import Foundation
public import Redis

/// A whole load test: creates its tasks, drives a running bridge on one path, checks every reply,
/// and removes what it created.
public struct LoadTestRunner: Sendable {
    public let redis: RedisConfiguration
    public let keys: Keys
    public let options: LoadOptions
    public private(set) var workload: Workload
    /// A process whose CPU time is measured over the run (the bridge), if given.
    public var watchedProcess: Int32?
    /// Whether to leave the tasks and stored replies in Redis afterwards.
    public var keepData = false
    /// Whether requests append messages (see ``Workload/appendsMessages``).
    public var appendsMessages: Bool {
        get { workload.appendsMessages }
        set { workload.appendsMessages = newValue }
    }

    /// The bridges' `--shards`: each task's requests go to its shard's stream.
    public var shards = 1

    public init(
        redis: RedisConfiguration,
        prefix: String,
        options: LoadOptions,
        taskCount: Int,
        invalidShare: Double,
        seed: UInt64,
        pubsub: PubSubMode = .classic
    ) {
        self.redis = redis
        self.keys = Keys(prefix: prefix, shardedPubSub: pubsub == .sharded)
        self.options = options
        self.workload = Workload(taskCount: taskCount, taskIdPrefix: "loadtest-\(options.runId)", invalidShare: invalidShare, seed: seed)
    }

    /// Runs the test; `progress` gets a line about once a second.
    public func run(progress: @escaping @Sendable (String) -> Void) async throws -> LoadReport {
        let client = TaskStatusClient(
            configuration: redis,
            prefix: keys.prefix,
            shards: shards,
            pubsub: keys.shardedPubSub ? .sharded : .classic
        )
        _ = try await client.put((0..<workload.taskCount).map(workload.task))

        let cpuBefore = watchedProcess.flatMap(processCPUSeconds)
        let threadsBefore = watchedProcess.flatMap(processThreads)
        let start = monotonicNanos() + 20_000_000
        let intervalSeconds = max(1, (options.expectedSeconds / 300).rounded(.up))
        let recorder = LoadRecorder(startNanos: start, intervalNanos: UInt64(intervalSeconds * 1e9))
        let schedule = options.schedule(startNanos: start)
        let reporting = Task {
            var lastAnswered = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                let now = recorder.progress()
                let elapsed = Double(monotonicNanos() &- start) / 1e9
                let p99 = now.lastP99Micros.map { String(format: "%.2f ms", Double($0) / 1000) } ?? "-"
                let counts = String(format: "%6.1f s  sent %9d  answered %9d  %8d/s", elapsed, now.sent, now.answered, now.answered - lastAnswered)
                progress("\(counts)  p99 \(p99)  problems \(now.mismatches)")
                lastAnswered = now.answered
            }
        }
        defer { reporting.cancel() }

        var missing = 0
        var storedOnly = 0
        switch options.path {
        case .stream:
            let driver = StreamLoadDriver(redis: redis, keys: keys, shards: shards, workload: workload, options: options, recorder: recorder)
            (missing, storedOnly) = try await driver.run(schedule: schedule)
        case .http:
            try await HTTPLoadDriver(workload: workload, options: options, recorder: recorder).run(schedule: schedule)
            missing = recorder.abandonPending()
        }
        reporting.cancel()
        let end = monotonicNanos()
        let cpuAfter = watchedProcess.flatMap(processCPUSeconds)
        let threadsAfter = watchedProcess.flatMap(processThreads)
        var summary = recorder.summary(endNanos: end)
        summary.missing = missing

        if !keepData { try await removeData(sent: summary.sent, client: client) }

        var cpu: LoadReport.ProcessCPU?
        if let pid = watchedProcess, let cpuBefore, let cpuAfter {
            let seconds = cpuAfter - cpuBefore
            cpu = .init(pid: pid, seconds: seconds, microsecondsPerRequest: summary.answered > 0 ? seconds * 1e6 / Double(summary.answered) : 0)
            if let threadsBefore, let threadsAfter {
                let threads = threadSwitches(before: threadsBefore, after: threadsAfter)
                let total = threads.reduce(ContextSwitches.zero) { $0 + $1.switches }
                let answered = Double(max(1, summary.answered))
                cpu?.contextSwitches = total
                cpu?.wakeUpsPerRequest = Double(total.voluntary) / answered
                cpu?.preemptionsPerRequest = Double(total.nonvoluntary) / answered
                cpu?.threads = threads.map { .init(name: $0.name, voluntary: $0.switches.voluntary, nonvoluntary: $0.switches.nonvoluntary) }
            }
        }
        return LoadReport(
            path: options.path.rawValue,
            mode: options.rate.map { "open loop at \(Self.format($0)) requests/s" } ?? "as fast as answered, \(options.concurrency) outstanding",
            rate: options.rate,
            tasks: workload.taskCount,
            invalidShare: workload.invalidShare,
            concurrency: options.concurrency,
            summary: summary,
            storedOnly: storedOnly,
            bridgeCPU: cpu
        )
    }

    private func removeData(sent: Int, client: TaskStatusClient) async throws {
        var keys = (0..<workload.taskCount).map { self.keys.task(workload.taskId($0)) }
        if options.path == .stream || options.httpRequestIds {
            for sequence in 0..<sent {
                keys.append(self.keys.reply(taskId: workload.taskId(workload.taskIndex(of: sequence)), requestId: "\(options.runId)-\(sequence)"))
            }
        }
        try await client.delete(keys: keys)
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
