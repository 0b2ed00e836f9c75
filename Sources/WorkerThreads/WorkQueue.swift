//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// The jobs given to one worker thread and what that thread is doing, as a plain value: callers
/// submit jobs, the thread asks what to do next. No locks and no threads here (``BlockingWorker``
/// adds them), so that every transition is tested on its own.
public struct WorkQueue<Job> {
    /// Whether a job was taken.
    public enum Admission: Sendable, Equatable {
        case accepted
        /// The queue holds `capacity` jobs already: the caller should answer "busy, retry later".
        case full
        /// The queue was closed: no new work.
        case closed
    }

    /// What the thread does next.
    public enum Next: Sendable, Equatable {
        /// Run the jobs just handed over, then ask again.
        case run
        /// Nothing to do yet: wait for a submission or for ``close()``.
        case wait
        /// Closed and drained: end the thread.
        case exit
    }

    /// Most jobs waiting at once (those being run, and those forced in, do not count).
    public let capacity: Int
    private var jobs: [Job] = []
    /// Jobs waiting that were forced in: they take no caller's place.
    private var forced = 0
    /// Whether the thread is running a batch it took.
    public private(set) var isRunning = false
    public private(set) var isClosed = false
    /// Whether the thread has ended (or, never started, will not run anything).
    public private(set) var hasExited = false

    public init(capacity: Int = .max) {
        self.capacity = max(1, capacity)
    }

    /// Jobs waiting to be taken.
    public var waiting: Int { jobs.count }

    /// Whether every job submitted so far has run.
    public var isIdle: Bool { jobs.isEmpty && !isRunning }

    /// Adds a job unless the queue is closed or full. `force` skips the capacity check, for work
    /// that was admitted once already (a retry), and does not count against it.
    public mutating func submit(_ job: Job, force: Bool = false) -> Admission {
        if isClosed { return .closed }
        if !force, jobs.count - forced >= capacity { return .full }
        jobs.append(job)
        if force { forced += 1 }
        return .accepted
    }

    /// Called by the thread when it is free: hands every waiting job over in `batch` (which must
    /// be empty; the arrays are swapped, so both keep their storage) and says what to do.
    public mutating func next(into batch: inout [Job]) -> Next {
        isRunning = false
        if !jobs.isEmpty {
            swap(&jobs, &batch)
            forced = 0
            isRunning = true
            return .run
        }
        if isClosed {
            hasExited = true
            return .exit
        }
        return .wait
    }

    /// No new jobs from now on; the thread runs those waiting, then exits.
    public mutating func close() {
        isClosed = true
    }

    /// For a queue whose thread never started: closes it and drops the waiting jobs, which will
    /// never run. Returns them, so that their callers can be answered.
    public mutating func abandon() -> [Job] {
        isClosed = true
        hasExited = true
        defer {
            jobs = []
            forced = 0
        }
        return jobs
    }
}
