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
import WorkerThreads

/// The HTTP API's way into the update pipeline: requests submitted while a batch is being
/// processed wait and go together as the next batch (the same engine, checks and atomic commit as
/// the stream, on a connection and cache of their own).
///
/// The batches run on a ``BlockingWorker`` of the queue's own, which answers the callers directly:
/// no hop through the cooperative pool between a request's arrival and its commit. At most
/// `httpQueueLimit` requests wait; past that, and while Redis refuses, callers are answered 503
/// with `Retry-After` at once.
public final class UpdateQueue: Service, @unchecked Sendable {
    private enum Job: Sendable {
        case update(PatchRequest, CheckedContinuation<TaskResponse, Never>)
        case read(taskId: String, rateLimitKey: String?, CheckedContinuation<TaskResponse, Never>)
        case list(ListQuery, rateLimitKey: String?, CheckedContinuation<TaskResponse, Never>)
        /// Sends again the announcements Redis refused after their commit.
        case retryAnnouncements
    }

    // Set once in init, before any job can be submitted; read-only afterwards.
    private var worker: BlockingWorker<Job>!
    private let metrics: BridgeMetrics
    private let status: BridgeStatus?
    private let logger: Logger
    private let retryScheduled = Atomic<Bool>(false)

    /// Seconds a 503 asks the caller to wait.
    static let retryAfter = "1"

    /// - Parameter status: where readiness learns that Redis refuses the HTTP path's batches.
    public init(configuration: BridgeConfiguration, metrics: BridgeMetrics, status: BridgeStatus? = nil, logger: Logger) {
        self.metrics = metrics
        self.status = status
        self.logger = logger
        // The processor connects on first use, on the worker's thread.
        let processor = UpdateProcessor(configuration: configuration, logger: logger, metrics: metrics, path: .http)
        worker = BlockingWorker(name: "http-worker", capacity: configuration.httpQueueLimit) { [weak self] jobs in
            self?.process(jobs, with: processor)
        }
    }

    /// Decides, commits and answers one request; Redis refusing, or too many requests waiting,
    /// answer 503 with `Retry-After`.
    public func submit(_ request: PatchRequest) async -> TaskResponse {
        await withCheckedContinuation { answer in enqueue(.update(request, answer), answer) }
    }

    /// Reads one task; Redis refusing answers 503.
    public func read(taskId: String, rateLimitKey: String?) async -> TaskResponse {
        await withCheckedContinuation { answer in enqueue(.read(taskId: taskId, rateLimitKey: rateLimitKey, answer), answer) }
    }

    /// Lists tasks (`GET /task-status`); Redis refusing answers 503.
    public func list(_ query: ListQuery, rateLimitKey: String?) async -> TaskResponse {
        await withCheckedContinuation { answer in enqueue(.list(query, rateLimitKey: rateLimitKey, answer), answer) }
    }

    private func enqueue(_ job: Job, _ answer: CheckedContinuation<TaskResponse, Never>) {
        switch worker.submit(job) {
        case .accepted:
            break
        case .full:
            metrics.countRequest(path: .http, status: 503)
            answer.resume(returning: Self.unavailable("the bridge has too many updates waiting"))
        case .closed:
            answer.resume(returning: Self.unavailable("the bridge is shutting down"))
        }
    }

    public func run() async throws {
        worker.start()
        // A graceful shutdown and a cancellation (another service failed) both close the queue:
        // what waits is answered, then the thread ends.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await worker.exited()
            } onGracefulShutdown: {
                self.close()
            }
        } onCancel: {
            self.close()
        }
    }

    private func close() {
        for job in worker.close() {
            switch job {
            case .update(_, let answer), .read(_, _, let answer), .list(_, _, let answer):
                answer.resume(returning: Self.unavailable("the bridge is shutting down"))
            case .retryAnnouncements: break
            }
        }
    }

    /// A 503 with `Retry-After` and SailPoint's envelope.
    static func unavailable(_ cause: String) -> TaskResponse {
        .error(503, cause, headers: [("Retry-After", retryAfter)])
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
                    metrics.countRefusal(error)
                    answer.resume(returning: Self.unavailable("Redis cannot answer for now: \(error.message)"))
                }
            case .list(let query, let rateLimitKey, let answer):
                do {
                    answer.resume(returning: try processor.list(query, rateLimitKey: rateLimitKey))
                } catch {
                    metrics.countRefusal(error)
                    answer.resume(returning: Self.unavailable("Redis cannot answer for now: \(error.message)"))
                }
            case .retryAnnouncements:
                retryScheduled.store(false, ordering: .relaxed)
                do {
                    try processor.retryOwedAnnouncements()
                } catch {
                    logger.warning("announcing updates failed again", metadata: ["error": "\(error)"])
                }
            }
        }
        if !requests.isEmpty {
            do {
                let processed = try processor.process(requests)
                var refused: String?
                for (answer, outcome) in zip(answers, processed.outcomes) {
                    switch outcome {
                    case .answered(let response):
                        answer.resume(returning: response)
                    case .deferred(let deferral):
                        refused = refused ?? deferral.message
                        metrics.countRequest(path: .http, status: 503)
                        answer.resume(returning: Self.unavailable("Redis cannot take the update for now (\(deferral.message)); nothing was changed"))
                    }
                }
                if let refused { metrics.countRefusal(RedisError(code: .serverError, message: refused)) }
                status?.markHTTP(refused: refused)
            } catch {
                status?.markHTTP(refused: error.message)
                // The connection failed mid-batch: a commit may or may not have run. A repeat with
                // the same X-Request-Id is answered once either way.
                logger.error("an HTTP batch failed", metadata: ["error": "\(error)"])
                metrics.countRefusal(error)
                for answer in answers {
                    metrics.countRequest(path: .http, status: 503)
                    answer.resume(
                        returning: Self.unavailable(
                            "Redis failed during the update (\(error.message)); it may or may not have been applied: repeat it with the same X-Request-Id to be answered once"
                        )
                    )
                }
            }
        }
        if processor.hasOwedAnnouncements, !retryScheduled.exchange(true, ordering: .relaxed) {
            let worker = self.worker!
            Task {
                try? await Task.sleep(for: .seconds(1))
                worker.submit(.retryAnnouncements, force: true)
            }
        }
    }
}
