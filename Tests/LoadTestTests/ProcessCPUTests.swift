//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import LoadTest
import Testing

/// Reading context switches from Linux's /proc, without a bridge.
@Suite("Context switches from /proc")
struct ProcessCPUTests {
    /// The lines around the counts as Linux 6 writes them (abridged).
    static let status = """
        Name:\tbridge-consumer
        Umask:\t0022
        State:\tS (sleeping)
        Tgid:\t4242
        Pid:\t4250
        Threads:\t9
        Cpus_allowed_list:\t0-1
        voluntary_ctxt_switches:\t123456
        nonvoluntary_ctxt_switches:\t789

        """

    @Test("a thread's status file gives its name and both counts")
    func parsesStatus() throws {
        let thread = try #require(ThreadStatus(parsing: Self.status))
        #expect(thread.name == "bridge-consumer")
        #expect(thread.switches == ContextSwitches(voluntary: 123_456, nonvoluntary: 789))
    }

    @Test("a status file without both counts, or with one that is not a number, gives nothing")
    func refusesIncomplete() {
        #expect(ThreadStatus(parsing: "Name:\tx\nvoluntary_ctxt_switches:\t5\n") == nil)
        #expect(ThreadStatus(parsing: "Name:\tx\nvoluntary_ctxt_switches:\tmany\nnonvoluntary_ctxt_switches:\t1\n") == nil)
        #expect(ThreadStatus(parsing: "") == nil)
        // A name with spaces and a colon stays whole.
        let odd = ThreadStatus(parsing: "Name:\tweird: name\nvoluntary_ctxt_switches:\t1\nnonvoluntary_ctxt_switches:\t2\n")
        #expect(odd?.name == "weird: name")
    }

    @Test("differences are summed by thread name; threads that started in between count from zero")
    func differencesByName() {
        func thread(_ name: String, _ voluntary: Int, _ nonvoluntary: Int) -> ThreadStatus {
            ThreadStatus(parsing: "Name:\t\(name)\nvoluntary_ctxt_switches:\t\(voluntary)\nnonvoluntary_ctxt_switches:\t\(nonvoluntary)\n")!
        }
        let before: [Int32: ThreadStatus] = [
            1: thread("main", 10, 1), 2: thread("worker", 100, 5), 3: thread("worker", 200, 5), 4: thread("gone", 7, 7),
        ]
        let after: [Int32: ThreadStatus] = [
            1: thread("main", 11, 1), 2: thread("worker", 150, 6), 3: thread("worker", 260, 5), 5: thread("new", 4, 2),
        ]
        let switches = threadSwitches(before: before, after: after)
        #expect(switches.map(\.name) == ["worker", "new", "main"])
        #expect(switches[0].switches == ContextSwitches(voluntary: 110, nonvoluntary: 1))
        #expect(switches[1].switches == ContextSwitches(voluntary: 4, nonvoluntary: 2))
        #expect(switches[2].switches == ContextSwitches(voluntary: 1, nonvoluntary: 0))
    }

    @Test("this process's own threads are found, with counts that only grow")
    func ownProcess() throws {
        let pid = ProcessInfo.processInfo.processIdentifier
        let first = try #require(processThreads(pid))
        #expect(!first.isEmpty)
        usleep(2000)
        let second = try #require(processThreads(pid))
        for (tid, now) in second {
            guard let then = first[tid] else { continue }
            #expect(now.switches.voluntary >= then.switches.voluntary)
            #expect(now.switches.nonvoluntary >= then.switches.nonvoluntary)
        }
        #expect(processThreads(-1) == nil)
    }
}
