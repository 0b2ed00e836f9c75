//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Synchronization

/// What the consumer loop and the HTTP path last knew about Redis, for the readiness endpoint.
public final class BridgeStatus: Sendable {
    private struct State {
        /// Each shard's consumer: `nil` while it works, else what stops it.
        var problems: [String?] = ["starting"]
        /// Each shard: the bridge that reads it when it is another one (this one stands by).
        var standby: [String?] = [nil]
        /// Why Redis last refused an HTTP batch; cleared by the next that goes through.
        var httpProblem: String?
    }
    private let state = Mutex(State())

    /// - Parameter shards: how many consumers (one per request stream) report here.
    public init(shards: Int = 1) {
        state.withLock {
            $0.problems = Array(repeating: "starting", count: max(1, shards))
            $0.standby = Array(repeating: nil, count: max(1, shards))
        }
    }

    /// The consumer of `shard` reads and commits normally.
    func markConsuming(shard: Int = 0) {
        state.withLock { state in
            guard state.problems.indices.contains(shard) else { return }
            state.problems[shard] = nil
            state.standby[shard] = nil
        }
    }

    /// Another bridge reads `shard` (`holder`, or nobody yet): this one stands by, which is no problem.
    func markStandby(shard: Int, holder: String) {
        state.withLock { state in
            guard state.problems.indices.contains(shard) else { return }
            state.problems[shard] = nil
            state.standby[shard] = holder
        }
    }

    /// The consumer of `shard` cannot work, and why.
    func markProblem(_ problem: String, shard: Int = 0) {
        state.withLock { state in
            if state.problems.indices.contains(shard) { state.problems[shard] = problem }
        }
    }

    /// The HTTP path's last batch: `nil` when Redis took it, else why it refused.
    func markHTTP(refused reason: String?) {
        state.withLock { $0.httpProblem = reason }
    }

    /// `nil` when every consumer works; otherwise what stops the first that does not (with its
    /// shard, when there are several).
    public var problem: String? {
        state.withLock { state in
            guard let k = state.problems.firstIndex(where: { $0 != nil }), let problem = state.problems[k] else { return nil }
            return state.problems.count > 1 ? "shard \(k): \(problem)" : problem
        }
    }

    /// Each shard's consumer as readiness reports it: reading, standing by for another
    /// bridge, or what stops it.
    public var readers: [String] {
        state.withLock { state in
            state.problems.indices.map { k in
                if let problem = state.problems[k] { return problem }
                guard let holder = state.standby[k] else { return "reading" }
                return holder.isEmpty ? "standby" : "standby: read by \(holder)"
            }
        }
    }

    /// Why the HTTP path's last batch was refused (`nil` when it went through).
    public var httpProblem: String? { state.withLock { $0.httpProblem } }
}
