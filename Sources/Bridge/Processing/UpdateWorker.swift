//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Logging
public import Redis
public import TaskStatus

/// An ``UpdateProcessor`` with a connection and a thread of its own: callers hand it a batch and
/// await the answers, and the blocking round trips stay on its thread.
public actor UpdateWorker {
    private let executor: ThreadExecutor
    private let processor: UpdateProcessor

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(configuration: BridgeConfiguration, name: String, logger: Logger, metrics: BridgeMetrics) {
        self.executor = ThreadExecutor(name: name)
        self.processor = UpdateProcessor(
            link: RedisLink(configuration: configuration.redis),
            configuration: configuration,
            logger: logger,
            metrics: metrics,
            defersAnnouncements: true
        )
    }

    deinit {
        executor.shutdown()
    }

    /// Decides, commits and answers `requests` (in order per task) and acknowledges `entryIds`;
    /// returns once the answers and the acknowledgement are sent (see ``settle()``).
    public func process(_ requests: [PatchRequest], acknowledging entryIds: [String] = []) -> Result<[TaskResponse], RedisError> {
        Result { () throws(RedisError) in try processor.process(requests, acknowledging: entryIds) }
    }

    /// Waits until Redis has run the announcements and acknowledgements sent so far: `process`
    /// returns as soon as they are sent.
    public func settle() -> Result<Void, RedisError> {
        Result { () throws(RedisError) in try processor.settle() }
    }

    /// Forgets the cached tasks (after Redis may have lost its data).
    public func forgetCachedTasks() {
        processor.forgetCachedTasks()
    }
}
