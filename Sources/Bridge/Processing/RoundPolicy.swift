//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

#if canImport(Glibc)
import Glibc
#endif

/// How many rounds of deciding again (revision conflicts, scripts lost) a batch gets before its
/// open requests are deferred, and whether it pauses between them.
struct RoundPolicy: Sendable {
    let maxRounds: Int
    /// Whether writers that keep colliding on a task take turns: a short random pause, growing
    /// with the rounds, lets the others through. Only on a thread of its own.
    let pauses: Bool

    /// Whether a first round whose commits announce themselves may be left in flight, its
    /// answer read with the next batch (see ``CommitRound``): the stream's, whose consumer
    /// waits for its next entries meanwhile; never HTTP's, whose callers wait for the answer.
    let leavesCommitsInFlight: Bool

    /// The stream's: 50 rounds, with pauses, on the consumer's (or a worker's) own thread.
    static let stream = RoundPolicy(maxRounds: 50, pauses: true, leavesCommitsInFlight: true)
    /// HTTP's: its one thread serves every HTTP request, so it never sleeps and defers sooner
    /// (503 with `Retry-After`).
    static let http = RoundPolicy(maxRounds: 8, pauses: false, leavesCommitsInFlight: false)

    /// Pauses after `round` (from 1) when the policy does and tasks are still open.
    func pause(after round: Int, openTasks: Bool) {
        guard pauses, openTasks, round >= 2 else { return }
        usleep(UInt32.random(in: 0...UInt32(min(round, 20) * 500)))
    }
}
