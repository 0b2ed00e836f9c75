//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Synchronization
import Testing
import WorkerThreads

#if canImport(Glibc)
import Glibc
#endif

@Suite("A worker's queue, without threads")
struct WorkQueueTests {
    @Test("the thread takes every waiting job at once, in order, and is idle only when they have run")
    func batches() {
        var queue = WorkQueue<Int>()
        var batch: [Int] = []
        #expect(queue.next(into: &batch) == .wait)
        #expect(queue.isIdle)
        #expect(queue.submit(1) == .accepted)
        #expect(queue.submit(2) == .accepted)
        #expect(!queue.isIdle)
        #expect(queue.next(into: &batch) == .run)
        #expect(batch == [1, 2])
        #expect(queue.isRunning)
        #expect(!queue.isIdle, "running the batch")
        batch.removeAll()
        #expect(queue.next(into: &batch) == .wait)
        #expect(queue.isIdle)
    }

    @Test("past its capacity a submission is refused as full; a forced one (a retry) is taken")
    func capacity() {
        var queue = WorkQueue<Int>(capacity: 2)
        #expect(queue.submit(1) == .accepted)
        #expect(queue.submit(2) == .accepted)
        #expect(queue.submit(3) == .full)
        #expect(queue.submit(3, force: true) == .accepted)
        var batch: [Int] = []
        #expect(queue.next(into: &batch) == .run)
        #expect(batch == [1, 2, 3])
        // Running jobs do not count against the capacity.
        #expect(queue.submit(4) == .accepted)
        #expect(queue.submit(5) == .accepted)
        #expect(queue.submit(6) == .full)
    }

    @Test("a forced job (a retry the worker owes itself) takes no caller's place")
    func forcedTakesNoPlace() {
        var queue = WorkQueue<Int>(capacity: 2)
        #expect(queue.submit(0, force: true) == .accepted)
        #expect(queue.submit(1) == .accepted)
        #expect(queue.submit(2) == .accepted)
        #expect(queue.submit(3) == .full)
        var batch: [Int] = []
        #expect(queue.next(into: &batch) == .run)
        #expect(batch == [0, 1, 2])
        // Once handed over, forced jobs are forgotten: the next ones count from zero.
        batch.removeAll()
        #expect(queue.submit(4) == .accepted)
        #expect(queue.submit(5) == .accepted)
        #expect(queue.submit(6) == .full)
    }

    @Test("once closed, nothing new is taken; the waiting jobs still run, then the thread exits")
    func closing() {
        var queue = WorkQueue<Int>()
        _ = queue.submit(1)
        queue.close()
        #expect(queue.submit(2) == .closed)
        var batch: [Int] = []
        #expect(queue.next(into: &batch) == .run)
        #expect(batch == [1])
        batch.removeAll()
        #expect(!queue.hasExited)
        #expect(queue.next(into: &batch) == .exit)
        #expect(queue.hasExited)
    }

    @Test("a queue whose thread never started hands its jobs back when abandoned")
    func abandoned() {
        var queue = WorkQueue<Int>()
        _ = queue.submit(1)
        #expect(queue.abandon() == [1])
        #expect(queue.hasExited)
        #expect(queue.submit(2) == .closed)
    }
}

@Suite("A worker thread", .timeLimit(.minutes(1)))
struct BlockingWorkerTests {
    @Test("jobs run in order on the thread; waitUntilIdle returns once they have; exited after close")
    func runsInOrder() async {
        let seen = Mutex<[Int]>([])
        let worker = BlockingWorker<Int>(name: "test-worker") { jobs in seen.withLock { $0 += jobs } }
        for k in 0..<100 { worker.submit(k) }
        worker.start()
        worker.waitUntilIdle()
        #expect(seen.withLock { $0 } == Array(0..<100))
        worker.close()
        await worker.exited()
        #expect(worker.submit(100) == .closed)
    }

    @Test("a worker that never started answers close with its jobs, and exited returns at once")
    func neverStarted() async {
        let worker = BlockingWorker<Int>(name: "idle-worker") { _ in }
        worker.submit(1)
        #expect(worker.close() == [1])
        await worker.exited()
    }

    @Test("a full queue refuses work until the thread takes it")
    func full() {
        let gate = Mutex(false)
        let worker = BlockingWorker<Int>(name: "busy-worker", capacity: 1) { _ in
            while !gate.withLock({ $0 }) { usleepBriefly() }
        }
        worker.start()
        #expect(worker.submit(1) == .accepted)
        // Until the thread takes job 1, one more is full; once it is running, one may wait.
        var admitted = 0
        for _ in 0..<1000 where admitted == 0 {
            if worker.submit(2) == .accepted { admitted += 1 } else { usleepBriefly() }
        }
        #expect(admitted == 1)
        #expect(worker.submit(3) == .full)
        gate.withLock { $0 = true }
        worker.waitUntilIdle()
        worker.close()
    }
}

private func usleepBriefly() {
    var spec = timespec(tv_sec: 0, tv_nsec: 1_000_000)
    nanosleep(&spec, nil)
}
