//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import Logging
import Redis
import TaskStatus

/// An ``UpdateProcessor`` with a connection and a thread of its own, for the stream consumer's
/// fork and join: the consumer hands it part of a batch with ``start(_:acknowledging:)``,
/// processes another part itself, then collects this part's outcome with ``finish()``.
///
/// The hand-off is a lock and a condition, not tasks: a batch costs one wake-up of this thread
/// and at most one of the consumer's, where child tasks went through the global pool and back.
/// The calls block, so they belong on a thread of the caller's own (the consumer's).
final class UpdateWorker: @unchecked Sendable {
    private enum Job {
        case process([PatchRequest], acknowledging: [String])
        case settle
        case forgetCachedTasks
    }

    // `job`, `outcome`, `busy` and `stopped` are only touched with `condition` locked; the
    // processor only on the worker's thread, or by the caller while no job is given (the lock
    // hands it over). That is what makes the unchecked Sendable conformance safe.
    private let condition = NSCondition()
    private var job: Job?
    private var outcome: Result<Void, RedisError> = .success(())
    private var busy = false
    private var stopped = false
    private let processor: UpdateProcessor

    init(configuration: BridgeConfiguration, name: String, logger: Logger, metrics: BridgeMetrics) {
        self.processor = UpdateProcessor(configuration: configuration, logger: logger, metrics: metrics, defersAnnouncements: true)
        let thread = Thread { [self] in runLoop() }
        thread.name = name
        thread.start()
    }

    /// Lets the thread end once it is idle.
    func shutdown() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Starts deciding, committing and answering `requests` (in order per task) and
    /// acknowledging `entryIds` on the worker's thread; ``finish()`` waits for the outcome.
    func start(_ requests: [PatchRequest], acknowledging entryIds: [String]) {
        give(.process(requests, acknowledging: entryIds))
    }

    /// Waits for the part given to ``start(_:acknowledging:)`` until its answers are sent (see
    /// ``settle()``), or for the Redis failure that stopped it.
    func finish() -> Result<Void, RedisError> {
        condition.lock()
        while busy { condition.wait() }
        let result = outcome
        outcome = .success(())
        condition.unlock()
        return result
    }

    /// Waits until Redis has run the announcements and acknowledgements sent so far: a part is
    /// finished as soon as they are sent.
    func settle() -> Result<Void, RedisError> {
        give(.settle)
        return finish()
    }

    /// Forgets the cached tasks (after Redis may have lost its data).
    func forgetCachedTasks() {
        give(.forgetCachedTasks)
        _ = finish()
    }

    private func give(_ next: Job) {
        condition.lock()
        while busy { condition.wait() }
        job = next
        busy = true
        condition.broadcast()
        condition.unlock()
    }

    private func runLoop() {
        while true {
            condition.lock()
            while job == nil && !stopped { condition.wait() }
            guard let next = job else {
                condition.unlock()
                return
            }
            job = nil
            condition.unlock()
            let result: Result<Void, RedisError>
            switch next {
            case .process(let requests, let entryIds):
                // The answers went out on Redis; the consumer only needs to know it worked.
                result = Result { () throws(RedisError) in _ = try processor.process(requests, acknowledging: entryIds) }
            case .settle:
                result = Result { () throws(RedisError) in try processor.settle() }
            case .forgetCachedTasks:
                processor.forgetCachedTasks()
                result = .success(())
            }
            condition.lock()
            outcome = result
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }
}
