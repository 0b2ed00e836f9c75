//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
public import Logging
import Redis
public import ServiceLifecycle
public import TaskStatus

/// The HTTP API's way into the update pipeline: requests submitted while a batch is being
/// processed wait and go together as the next batch (the same engine, checks and atomic commit as
/// the stream, on a connection and cache of their own).
///
/// The batches run on a thread of the queue's own, which waits for work and answers the callers
/// directly: no hop through the cooperative pool between a request's arrival and its commit.
public final class UpdateQueue: Service, @unchecked Sendable {
    private enum Job {
        case update(PatchRequest, CheckedContinuation<TaskResponse, Never>)
        case read(taskId: String, rateLimitKey: String?, CheckedContinuation<TaskResponse, Never>)
    }

    // `jobs`, `closed`, `started`, `finished` and `stopped` are only touched with `condition`
    // locked; that is what makes the unchecked Sendable conformance safe.
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var closed = false
    private var started = false
    private var finished = false
    private var stopped: CheckedContinuation<Void, Never>?

    private let configuration: BridgeConfiguration
    private let metrics: BridgeMetrics
    private let logger: Logger

    public init(configuration: BridgeConfiguration, metrics: BridgeMetrics, logger: Logger) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    /// Decides, commits and answers one request; Redis failures answer 500.
    public func submit(_ request: PatchRequest) async -> TaskResponse {
        await withCheckedContinuation { answer in enqueue(.update(request, answer)) }
    }

    /// Reads one task; Redis failures answer 500.
    public func read(taskId: String, rateLimitKey: String?) async -> TaskResponse {
        await withCheckedContinuation { answer in enqueue(.read(taskId: taskId, rateLimitKey: rateLimitKey, answer)) }
    }

    private func enqueue(_ job: Job) {
        condition.lock()
        if closed {
            condition.unlock()
            switch job {
            case .update(_, let answer), .read(_, _, let answer): answer.resume(returning: .error(500, "the bridge is shutting down"))
            }
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    public func run() async throws {
        guard markStarted() else { return }
        let thread = Thread { [self] in
            runLoop(
                UpdateProcessor(link: RedisLink(configuration: configuration.redis), configuration: configuration, logger: logger, metrics: metrics)
            )
        }
        thread.name = "http-worker"
        thread.start()
        await withGracefulShutdownHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                condition.lock()
                if finished {
                    condition.unlock()
                    continuation.resume()
                } else {
                    stopped = continuation
                    condition.unlock()
                }
            }
        } onGracefulShutdown: {
            // New requests are refused; what is queued is still answered.
            self.condition.lock()
            self.closed = true
            self.condition.signal()
            self.condition.unlock()
        }
    }

    private func markStarted() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let first = !started
        started = true
        return first
    }

    private func runLoop(_ processor: UpdateProcessor) {
        while true {
            condition.lock()
            while jobs.isEmpty && !closed { condition.wait() }
            if jobs.isEmpty {
                finished = true
                let stopped = self.stopped
                self.stopped = nil
                condition.unlock()
                stopped?.resume()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            process(batch, with: processor)
        }
    }

    private func process(_ batch: [Job], with processor: UpdateProcessor) {
        var requests: [PatchRequest] = []
        var answers: [CheckedContinuation<TaskResponse, Never>] = []
        for job in batch {
            switch job {
            case .update(let request, let answer):
                requests.append(request)
                answers.append(answer)
            case .read(let taskId, let rateLimitKey, let answer):
                do {
                    answer.resume(returning: try processor.read(taskId: taskId, rateLimitKey: rateLimitKey))
                } catch {
                    answer.resume(returning: .error(500, "Redis is not available: \(error.message)"))
                }
            }
        }
        guard !requests.isEmpty else { return }
        do {
            let responses = try processor.process(requests)
            for (answer, response) in zip(answers, responses) { answer.resume(returning: response) }
        } catch {
            logger.error("an HTTP batch failed", metadata: ["error": "\(error)"])
            for answer in answers { answer.resume(returning: .error(500, "Redis is not available: \(error.message)")) }
        }
    }
}
