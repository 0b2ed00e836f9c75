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
        var consuming = false
        var problem: String? = "starting"
        /// Why Redis last refused an HTTP batch; cleared by the next that goes through.
        var httpProblem: String?
    }
    private let state = Mutex(State())

    public init() {}

    /// The loop reads and commits normally.
    func markConsuming() {
        state.withLock {
            $0.consuming = true
            $0.problem = nil
        }
    }

    /// The loop cannot work, and why.
    func markProblem(_ problem: String) {
        state.withLock {
            $0.consuming = false
            $0.problem = problem
        }
    }

    /// The HTTP path's last batch: `nil` when Redis took it, else why it refused.
    func markHTTP(refused reason: String?) {
        state.withLock { $0.httpProblem = reason }
    }

    /// `nil` when the loop works; otherwise what stops it.
    public var problem: String? { state.withLock { $0.problem } }

    /// Why the HTTP path's last batch was refused (`nil` when it went through).
    public var httpProblem: String? { state.withLock { $0.httpProblem } }
}
