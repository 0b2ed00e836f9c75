//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Logging
import Redis
import Synchronization
import WorkerThreads

/// An ``UpdateProcessor`` with a connection and a thread of its own, for the stream consumer's
/// fork and join: the consumer hands it part of a batch with ``start(_:)``, processes another part
/// itself, then collects this part's outcome with ``finish()``.
///
/// The hand-off is a ``BlockingWorker``: a batch costs one wake-up of this thread and at most one
/// of the consumer's, where child tasks went through the global pool and back. ``finish()`` blocks,
/// so it belongs on a thread of the caller's own (the consumer's).
final class PartWorker: Sendable {
    /// One part of a batch: requests in stream order, and entries with nothing to answer (deleted
    /// while pending) that only need acknowledging.
    struct Part: Sendable {
        var requests: [PatchRequest] = []
        var extraAcks: [String] = []

        var isEmpty: Bool { requests.isEmpty && extraAcks.isEmpty }
    }

    private enum Job: Sendable {
        case process(Part)
        case settle
        case forgetCachedTasks
        case takeAnnouncementFailure
    }

    private let worker: BlockingWorker<Job>
    private let outcome = Outcome()

    /// The last job's outcome, set on the worker's thread and read after ``BlockingWorker/waitUntilIdle()``.
    private final class Outcome: Sendable {
        let result = Mutex<Result<String?, RedisError>>(.success(nil))
    }

    init(configuration: BridgeConfiguration, name: String, logger: Logger, metrics: BridgeMetrics) {
        let processor = UpdateProcessor(configuration: configuration, logger: logger, metrics: metrics, path: .stream)
        let outcome = self.outcome
        worker = BlockingWorker(name: name) { jobs in
            for job in jobs {
                let result: Result<String?, RedisError>
                switch job {
                case .process(let part): result = Self.run(part, on: processor).map { nil }
                case .settle: result = Result { () throws(RedisError) in try processor.settle() }.map { nil }
                case .forgetCachedTasks:
                    processor.forgetCachedTasks()
                    result = .success(nil)
                case .takeAnnouncementFailure: result = .success(processor.takeAnnouncementFailure())
                }
                outcome.result.withLock { $0 = result }
            }
        }
    }

    /// Processes a part on `processor`: a failure when the connection failed or when Redis
    /// refused some of its requests (those are neither answered nor acknowledged).
    static func run(_ part: Part, on processor: UpdateProcessor) -> Result<Void, RedisError> {
        do {
            let batch = try processor.process(part.requests, acknowledging: part.extraAcks)
            if let reason = batch.deferrals.values.first { return .failure(RedisError(code: .serverError, message: reason)) }
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    /// Starts the thread (the consumer's `run` does, before the first batch).
    func start() { worker.start() }

    /// Lets the thread end once it is idle.
    func close() { worker.close() }

    /// Starts deciding, committing and answering a part on the worker's thread; ``finish()`` waits for it.
    func start(_ part: Part) {
        worker.submit(.process(part))
    }

    /// Waits for the part given to ``start(_:)`` until its answers are sent (see ``settle()``),
    /// or for the failure that stopped it.
    func finish() -> Result<Void, RedisError> {
        worker.waitUntilIdle()
        return outcome.result.withLock { $0 }.map { _ in () }
    }

    /// Waits until Redis has run the announcements and acknowledgements sent so far: a part is
    /// finished as soon as they are sent.
    func settle() -> Result<Void, RedisError> {
        perform(.settle).map { _ in () }
    }

    /// The failure of announcements read by now (their entries are still pending).
    func takeAnnouncementFailure() -> String? {
        (try? perform(.takeAnnouncementFailure).get()) ?? nil
    }

    /// Forgets the cached tasks (after Redis may have lost its data).
    func forgetCachedTasks() {
        _ = perform(.forgetCachedTasks)
    }

    private func perform(_ job: Job) -> Result<String?, RedisError> {
        worker.submit(job)
        worker.waitUntilIdle()
        return outcome.result.withLock { $0 }
    }
}
