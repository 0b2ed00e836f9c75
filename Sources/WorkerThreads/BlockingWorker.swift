//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation

/// A thread of its own that runs the jobs given to it, in order, a batch at a time: for work that
/// blocks in C calls (a hiredis connection) and must stay off Swift's cooperative pool.
///
/// Callers ``submit(_:force:)`` jobs from any thread; the thread takes everything waiting at once
/// and hands it to `body`. The state lives in a ``WorkQueue`` behind one lock and condition. The
/// thread starts with ``start()`` (never in `init`), ends after ``close()`` once the waiting jobs
/// have run, and ``exited()`` waits for that.
public final class BlockingWorker<Job: Sendable>: @unchecked Sendable {
    // `queue`, `started` and `exitWaiters` are only touched with `condition` locked; `body` only
    // on the worker's thread. That is what makes the unchecked Sendable conformance safe.
    private let condition = NSCondition()
    private var queue: WorkQueue<Job>
    private var started = false
    private var exitWaiters: [CheckedContinuation<Void, Never>] = []
    /// Who sleeps on `condition` (locked with it): a wake-up is only sent to someone there, since
    /// each costs a system call, one a request when requests come one at a time.
    private var workerSleeps = false
    private var idleWaiters = 0
    private let name: String
    private let startsOnSubmit: Bool
    private let body: ([Job]) -> Void

    /// - Parameters:
    ///   - name: the thread's name, for debuggers and `top -H`.
    ///   - capacity: most jobs waiting at once; ``submit(_:force:)`` answers `.full` beyond it.
    ///   - startsOnSubmit: start the thread with the first job rather than with ``start()`` (for
    ///     an executor, whose first job is the first call that needs it).
    ///   - body: runs each batch, in order, on the worker's thread.
    public init(name: String, capacity: Int = .max, startsOnSubmit: Bool = false, body: @escaping ([Job]) -> Void) {
        self.name = name
        self.queue = WorkQueue(capacity: capacity)
        self.startsOnSubmit = startsOnSubmit
        self.body = body
    }

    /// Starts the thread, once; later calls do nothing. A worker closed before it started never does.
    public func start() {
        condition.lock()
        let start = !started && !queue.hasExited
        started = true
        condition.unlock()
        if start { spawn() }
    }

    /// Queues a job for the thread (see ``WorkQueue/submit(_:force:)``).
    @discardableResult
    public func submit(_ job: Job, force: Bool = false) -> WorkQueue<Job>.Admission {
        condition.lock()
        let admission = queue.submit(job, force: force)
        let start = admission == .accepted && startsOnSubmit && !started
        if start { started = true }
        // Besides the worker, a caller may be waiting in waitUntilIdle.
        if idleWaiters > 0 {
            condition.broadcast()
        } else if workerSleeps {
            condition.signal()
        }
        condition.unlock()
        if start { spawn() }
        return admission
    }

    /// Blocks the calling thread until every job submitted so far has run (or the worker
    /// exited). Never call it from the worker's own thread.
    public func waitUntilIdle() {
        condition.lock()
        idleWaiters += 1
        while !queue.isIdle && !queue.hasExited { condition.wait() }
        idleWaiters -= 1
        condition.unlock()
    }

    /// No new jobs; the thread runs the waiting ones and ends. Returns the jobs that will never
    /// run because the thread never started.
    @discardableResult
    public func close() -> [Job] {
        condition.lock()
        var dropped: [Job] = []
        var waiters: [CheckedContinuation<Void, Never>] = []
        if started {
            queue.close()
            condition.broadcast()
        } else if !queue.hasExited {
            dropped = queue.abandon()
            swap(&waiters, &exitWaiters)
        }
        condition.unlock()
        for waiter in waiters { waiter.resume() }
        return dropped
    }

    /// Waits until the thread has ended (at once if it never started and was closed).
    public func exited() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            if queue.hasExited {
                condition.unlock()
                continuation.resume()
            } else {
                exitWaiters.append(continuation)
                condition.unlock()
            }
        }
    }

    private func spawn() {
        let thread = Thread { [self] in
            // Named from inside: on Linux only the thread itself can give the kernel its name
            // (for `top -H`, `perf` and loadtest's by-thread figures).
            Thread.current.name = name
            runLoop()
        }
        thread.name = name
        // The engine recurses into JSON values as deep as the request limits allow.
        thread.stackSize = 8 << 20
        thread.start()
    }

    private func runLoop() {
        var batch: [Job] = []
        while true {
            condition.lock()
            var next = queue.next(into: &batch)
            while next == .wait {
                // A finished batch may be what a waitUntilIdle caller waits for.
                if idleWaiters > 0 { condition.broadcast() }
                workerSleeps = true
                condition.wait()
                workerSleeps = false
                next = queue.next(into: &batch)
            }
            if next == .exit {
                condition.broadcast()
                var waiters: [CheckedContinuation<Void, Never>] = []
                swap(&waiters, &exitWaiters)
                condition.unlock()
                for waiter in waiters { waiter.resume() }
                return
            }
            condition.unlock()
            body(batch)
            batch.removeAll(keepingCapacity: true)
        }
    }
}
