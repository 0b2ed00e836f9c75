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

    /// Why a part did not answer everything.
    enum Failure: Error, Sendable {
        /// The connection failed, or the announcements of the batch before did (their entries
        /// are still pending).
        case redis(RedisError)
        /// Redis refused some requests for now: neither answered nor acknowledged.
        case deferred(Deferral)

        /// As a Redis error, for the logs, readiness and the refusal counter.
        var error: RedisError {
            switch self {
            case .redis(let error): return error
            case .deferred(let deferral): return RedisError(code: .serverError, message: deferral.message)
            }
        }
    }

    private enum Job: Sendable {
        case process(Part)
        case settle
        case forgetCachedTasks
    }

    private let worker: BlockingWorker<Job>
    private let outcome = Outcome()
    /// The part's processor (its connection and its cache): used on the worker's thread, or on
    /// the consumer's when a batch is too small to hand over (``runHere(_:)``), never both at
    /// once (the consumer waits for the worker before the next batch). The lock is never
    /// contended; it makes the hand-over between threads safe.
    private let processor: Held

    /// The processor and the lock that hands it between threads (`@unchecked`: only reached
    /// through ``withLock(_:)``).
    private final class Held: @unchecked Sendable {
        private let lock = Mutex(())
        private let processor: UpdateProcessor

        init(_ processor: UpdateProcessor) { self.processor = processor }

        func withLock<R>(_ body: (UpdateProcessor) -> R) -> R { lock.withLock { _ in body(processor) } }
    }

    /// The last job's outcome, set on the worker's thread and read after ``BlockingWorker/waitUntilIdle()``.
    private final class Outcome: Sendable {
        let result = Mutex<Result<Void, Failure>>(.success(()))
    }

    init(configuration: BridgeConfiguration, name: String, logger: Logger, metrics: BridgeMetrics) {
        let processor = Held(UpdateProcessor(configuration: configuration, logger: logger, metrics: metrics, path: .stream))
        self.processor = processor
        let outcome = self.outcome
        worker = BlockingWorker(name: name) { jobs in
            for job in jobs {
                let result: Result<Void, Failure> = processor.withLock { processor in
                    switch job {
                    case .process(let part): return Self.run(part, on: processor)
                    case .settle: return Self.settle(processor).mapError(Failure.redis)
                    case .forgetCachedTasks:
                        processor.forgetCachedTasks()
                        return .success(())
                    }
                }
                outcome.result.withLock { $0 = result }
            }
        }
    }

    /// Processes a part on `processor`: a failure when the connection failed, when Redis refused
    /// some of its requests (those are neither answered nor acknowledged), or when the
    /// announcements of the batch before on this connection failed (read with this batch's
    /// round trips: their entries are still pending).
    static func run(_ part: Part, on processor: UpdateProcessor) -> Result<Void, Failure> {
        do {
            return outcome(of: try processor.process(part.requests, acknowledging: part.extraAcks), on: processor)
        } catch {
            return .failure(.redis(error))
        }
    }

    /// Reads the answer of `processor`'s commit in flight and finishes its batch: a failure when
    /// the connection failed or some of its requests were deferred (those stay pending).
    static func complete(_ processor: UpdateProcessor) -> Result<Void, Failure> {
        do {
            guard let batch = try processor.completeInFlight() else { return .success(()) }
            return outcome(of: batch, on: processor)
        } catch {
            return .failure(.redis(error))
        }
    }

    /// A processed batch's outcome: its first deferral, else the failure of the announcements
    /// read by now.
    private static func outcome(of batch: Batch, on processor: UpdateProcessor) -> Result<Void, Failure> {
        if let deferral = batch.deferrals.values.first { return .failure(.deferred(deferral)) }
        return announced(processor).mapError(Failure.redis)
    }

    /// Waits until Redis has answered what `processor` sent without waiting: a failure when it
    /// cannot tell, or when those announcements failed.
    static func settle(_ processor: UpdateProcessor) -> Result<Void, RedisError> {
        do {
            try processor.settle()
            return announced(processor)
        } catch {
            return .failure(error)
        }
    }

    private static func announced(_ processor: UpdateProcessor) -> Result<Void, RedisError> {
        guard let failure = processor.takeAnnouncementFailure() else { return .success(()) }
        return .failure(RedisError(code: .serverError, message: failure))
    }

    /// Starts the thread (the consumer's `run` does, before the first batch).
    func start() { worker.start() }

    /// Lets the thread end once it is idle.
    func close() { worker.close() }

    /// Decides, commits and answers a part on the calling thread, with this worker's processor
    /// (so a task keeps its connection, its cache and the order of its announcements): for a
    /// batch too small to pay for the two threads' wake-ups.
    func runHere(_ part: Part) -> Result<Void, Failure> {
        processor.withLock { Self.run(part, on: $0) }
    }

    /// Whether the worker's processor has a commit in flight (its thread is idle between batches).
    var isInFlight: Bool {
        processor.withLock { $0.isInFlight }
    }

    /// ``complete(_:)`` on the calling thread, with this worker's processor (idle between batches).
    func completeHere() -> Result<Void, Failure> {
        processor.withLock { Self.complete($0) }
    }

    /// Starts deciding, committing and answering a part on the worker's thread; ``finish()`` waits for it.
    func start(_ part: Part) {
        worker.submit(.process(part))
    }

    /// Waits for the part given to ``start(_:)`` until its answers are sent (see ``settle()``),
    /// or for the failure that stopped it.
    func finish() -> Result<Void, Failure> {
        worker.waitUntilIdle()
        return outcome.result.withLock { $0 }
    }

    /// Waits until Redis has run the announcements and acknowledgements sent so far (a part is
    /// finished as soon as they are sent); a failure when they failed.
    func settle() -> Result<Void, RedisError> {
        perform(.settle).mapError(\.error)
    }

    /// Forgets the cached tasks (after Redis may have lost its data).
    func forgetCachedTasks() {
        _ = perform(.forgetCachedTasks)
    }

    private func perform(_ job: Job) -> Result<Void, Failure> {
        worker.submit(job)
        worker.waitUntilIdle()
        return outcome.result.withLock { $0 }
    }
}
