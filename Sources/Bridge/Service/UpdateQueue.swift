//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Logging
import Redis
public import ServiceLifecycle
import Synchronization
public import TaskStatus

/// The HTTP API's way into the update pipeline: requests submitted while a batch is being
/// processed wait and go together as the next batch, through a worker of their own (the same
/// engine, checks and atomic commit as the stream, its own connection and cache).
public final class UpdateQueue: Service, Sendable {
    private struct Pending: Sendable {
        let request: PatchRequest
        let answer: CheckedContinuation<TaskResponse, Never>
    }

    private struct State {
        var pending: [Pending] = []
        var closed = false
    }

    private let state = Mutex(State())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let worker: UpdateWorker
    private let logger: Logger

    public init(configuration: BridgeConfiguration, metrics: BridgeMetrics, logger: Logger) {
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        worker = UpdateWorker(configuration: configuration, name: "http-worker", logger: logger, metrics: metrics)
        self.logger = logger
    }

    /// Decides, commits and answers one request; Redis failures answer 500.
    public func submit(_ request: PatchRequest) async -> TaskResponse {
        await withCheckedContinuation { answer in
            let accepted = state.withLock { state -> Bool in
                guard !state.closed else { return false }
                state.pending.append(Pending(request: request, answer: answer))
                return true
            }
            if accepted {
                wake.yield()
            } else {
                answer.resume(returning: .error(500, "the bridge is shutting down"))
            }
        }
    }

    /// Reads one task; Redis failures answer 500.
    public func read(taskId: String, rateLimitKey: String?) async -> TaskResponse {
        switch await worker.read(taskId: taskId, rateLimitKey: rateLimitKey) {
        case .success(let response): return response
        case .failure(let error): return .error(500, "Redis is not available: \(error.message)")
        }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in wakeups {
                while true {
                    let batch = state.withLock { state -> [Pending] in
                        defer { state.pending.removeAll(keepingCapacity: true) }
                        return state.pending
                    }
                    if batch.isEmpty { break }
                    switch await worker.process(batch.map(\.request)) {
                    case .success(let responses):
                        for (pending, response) in zip(batch, responses) { pending.answer.resume(returning: response) }
                    case .failure(let error):
                        logger.error("an HTTP batch failed", metadata: ["error": "\(error)"])
                        for pending in batch { pending.answer.resume(returning: .error(500, "Redis is not available: \(error.message)")) }
                    }
                }
                if state.withLock({ $0.closed && $0.pending.isEmpty }) { break }
            }
        } onGracefulShutdown: {
            // New requests are refused; what is queued is still answered.
            self.state.withLock { $0.closed = true }
            self.wake.yield()
        }
        for pending in state.withLock({ $0.pending }) { pending.answer.resume(returning: .error(500, "the bridge is shutting down")) }
    }
}
