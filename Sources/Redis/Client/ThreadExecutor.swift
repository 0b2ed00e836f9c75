//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import WorkerThreads

#if canImport(Glibc)
import Glibc
#endif

/// A serial executor with a thread of its own, for actors whose methods block in C calls: their
/// jobs never occupy a thread of Swift's cooperative pool. The thread starts with the first job.
public final class ThreadExecutor: SerialExecutor, @unchecked Sendable {
    // Set once in init, before any job can be enqueued; read-only afterwards.
    private var worker: BlockingWorker<UnownedJob>!

    public init(name: String) {
        // Weak: an actor's last job may release the actor and with it this executor, while the
        // thread still finishes its batch.
        worker = BlockingWorker(name: name, startsOnSubmit: true) { [weak self] jobs in
            guard let self else { return }
            let executor = asUnownedSerialExecutor()
            for job in jobs { job.runSynchronously(on: executor) }
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        worker.submit(UnownedJob(job))
    }

    /// Lets the thread finish the jobs it has and end.
    public func shutdown() {
        worker.close()
    }
}

/// Blocks the calling thread for `duration` (at least a microsecond, under a second): for a
/// thread of our own (a consumer's, a transport's), never one of the cooperative pool, where a
/// timer would cost another thread's wake-up.
package func sleepThisThread(for duration: Duration) {
    let (seconds, attoseconds) = duration.components
    usleep(UInt32(max(1, attoseconds / 1_000_000_000_000 + seconds * 1_000_000)))
}
