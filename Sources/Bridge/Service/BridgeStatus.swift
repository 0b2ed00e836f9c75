//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Synchronization

/// What the consumer loop last knew about Redis, for the readiness endpoint.
public final class BridgeStatus: Sendable {
    private struct State {
        var consuming = false
        var problem: String? = "starting"
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

    /// `nil` when the loop works; otherwise what stops it.
    public var problem: String? { state.withLock { $0.problem } }
}
