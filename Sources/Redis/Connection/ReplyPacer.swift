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

/// Lets a connection sleep through most of a long pipeline before reading its replies.
///
/// Redis reads a pipeline 16 KB at a time and answers each piece before it reads the next, so a
/// reader blocked on the socket wakes up for every piece: a dozen times for one batch's commit,
/// each a context switch that costs more than the parsing it does. After sending a pipeline of
/// at least ``threshold`` bytes the connection sleeps for most of the time Redis took per byte
/// over the last such round trips, then reads: the thread wakes once or twice instead. Replies
/// are never read later than they would be anyway when the estimate holds, since the caller needs
/// all of them; short pipelines (small batches, low rates) never wait.
struct ReplyPacer {
    /// Pipelines shorter than this are read at once.
    static let threshold = 48 << 10
    /// The share of the expected time slept: the rest is read as it comes, so that a faster
    /// Redis costs little.
    static let share = 0.8
    /// The longest sleep, whatever the estimate.
    static let longest: Duration = .milliseconds(5)

    /// The running estimate (exponentially weighted), in nanoseconds per byte sent; 0 until the
    /// first long round trip.
    private(set) var nanosecondsPerByte = 0.0

    /// Sleeps before the replies to `bytes` just sent are read.
    func pause(after bytes: Int) {
        guard bytes >= Self.threshold, nanosecondsPerByte > 0 else { return }
        let nanoseconds = min(Double(bytes) * nanosecondsPerByte * Self.share, Double(Self.longest.components.attoseconds / 1_000_000_000))
        var wait = timespec(tv_sec: 0, tv_nsec: Int(nanoseconds))
        nanosleep(&wait, nil)
    }

    /// Learns from a round trip of `bytes` that took `elapsed` from sending to the last reply.
    mutating func record(bytes: Int, elapsed: Duration) {
        guard bytes >= Self.threshold else { return }
        let (seconds, attoseconds) = elapsed.components
        let sample = (Double(seconds) * 1e9 + Double(attoseconds) / 1e9) / Double(bytes)
        nanosecondsPerByte = nanosecondsPerByte == 0 ? sample : nanosecondsPerByte * 0.8 + sample * 0.2
    }
}
