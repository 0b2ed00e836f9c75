//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Logging
import Metrics
import Redis
import TaskStatus

/// The consumer's work, on a thread of its own: each ``step()`` settles set-up and the periodic
/// jobs when due, then reads one batch with `XREADGROUP ... BLOCK` and splits it by task into
/// parts that are decided, committed and answered at the same time: one by the consumer itself,
/// the others by workers (each on its own thread and connection, so that one computes while
/// Redis runs another's commands). A task always goes to the same part, so its requests keep
/// their order.
actor StreamConsumer {
    let configuration: BridgeConfiguration
    let keys: Keys
    let reader: RedisLink
    /// The connection of set-up and the periodic jobs.
    let commands: RedisLink
    /// The part of each batch that the consumer processes itself, on its own connection.
    let processor: UpdateProcessor
    /// The other parts' workers (`workers` in the configuration, less one).
    let workers: [UpdateWorker]
    let decoder: PatchRequestDecoder
    let authenticator: Authenticator?
    let status: BridgeStatus
    let metrics: BridgeMetrics
    let logger: Logger
    private let executor: ThreadExecutor
    private var needsSetup = true
    var maintenance: MaintenanceClock

    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    init(configuration: BridgeConfiguration, authenticator: Authenticator?, status: BridgeStatus, metrics: BridgeMetrics, logger: Logger) {
        self.authenticator = authenticator
        self.configuration = configuration
        self.keys = configuration.keys
        self.status = status
        self.metrics = metrics
        self.logger = logger
        self.executor = ThreadExecutor(name: "bridge-consumer")
        var readerConfiguration = configuration.redis
        // A blocking read needs a socket timeout longer than its BLOCK.
        readerConfiguration.commandTimeout = configuration.blockTimeout + .seconds(10)
        self.reader = RedisLink(configuration: readerConfiguration)
        self.commands = RedisLink(configuration: configuration.redis)
        self.processor = UpdateProcessor(configuration: configuration, logger: logger, metrics: metrics, defersAnnouncements: true)
        self.workers = (1..<max(1, configuration.workers)).map {
            UpdateWorker(configuration: configuration, name: "bridge-worker-\($0)", logger: logger, metrics: metrics)
        }
        self.decoder = PatchRequestDecoder(limits: configuration.limits, requireExperimentalFlag: configuration.requireExperimentalFlag)
        self.maintenance = MaintenanceClock(configuration: configuration)
    }

    deinit {
        executor.shutdown()
        for worker in workers { worker.shutdown() }
    }

    /// What one step did.
    enum Outcome: Sendable {
        case processed(Int)
        case failed(RedisError)
    }

    /// Runs batch after batch until `stop` is set (or the task is cancelled), backing off while
    /// Redis fails, then waits until Redis has run the last batch's answers.
    func run(until stop: StopSignal) async {
        var backoff = Duration.milliseconds(100)
        while !stop.isSet && !Task.isCancelled {
            switch await step() {
            case .processed:
                backoff = .milliseconds(100)
            case .failed(let error):
                logger.error("redis failed; retrying", metadata: ["error": "\(error)", "retry.in": "\(backoff)"])
                var left = backoff
                while left > .zero, !stop.isSet, !Task.isCancelled {
                    let step = min(left, .milliseconds(100))
                    try? await Task.sleep(for: step)
                    left -= step
                }
                backoff = min(backoff * 2, .seconds(5))
            }
        }
        settle()
    }

    /// One turn of the consumer loop; Redis failures are returned for the caller to back off.
    func step() async -> Outcome {
        do throws(RedisError) {
            if needsSetup {
                try await setUp()
                needsSetup = false
            }
            try await maintain()
            var read = RedisPipeline()
            read.begin("XREADGROUP")
            for word in ["GROUP", keys.group, configuration.consumer, "COUNT"] { read.add(word) }
            read.add(configuration.batchSize)
            read.add("BLOCK")
            read.add(configuration.blockTimeout.milliseconds)
            read.add("STREAMS")
            read.add(keys.requests)
            read.add(">")
            let replies = try reader.execute(read)
            if let message = replies[0].errorMessage { throw RedisError(code: .serverError, message: message) }
            let entries = StreamEntry.fromReadGroup(replies[0])
            if !entries.isEmpty { try await handle(entries) }
            status.markConsuming()
            return .processed(entries.count)
        } catch {
            if error.serverErrorPrefix == "NOGROUP" {
                logger.warning("the consumer group is gone (Redis lost its data?); recreating it", metadata: ["stream": "\(keys.requests)"])
                needsSetup = true
                forgetCachedTasks()
                return .processed(0)
            }
            status.markProblem(error.message)
            needsSetup = true
            return .failed(error)
        }
    }

    /// Waits until Redis has run every answer and acknowledgement the workers sent (they do not
    /// wait for them batch by batch). A worker whose connection failed has nothing left to wait for:
    /// its unacknowledged entries are delivered again.
    func settle() {
        let outcomes = [Result { () throws(RedisError) in try processor.settle() }] + workers.map { $0.settle() }
        for case .failure(let error) in outcomes {
            logger.warning("could not confirm the last answers; their entries will be delivered again", metadata: ["error": "\(error)"])
        }
    }

    private func forgetCachedTasks() {
        processor.forgetCachedTasks()
        for worker in workers { worker.forgetCachedTasks() }
    }

    /// Creates the group when missing and settles what this consumer left pending.
    private func setUp() async throws(RedisError) {
        let created = try commands.execute([RedisCommand("XGROUP", "CREATE", keys.requests, keys.group, "0", "MKSTREAM")])[0]
        if case .error(let message) = created, !message.hasPrefix("BUSYGROUP") {
            throw RedisError(code: .serverError, message: message)
        }
        if created == .status("OK") {
            logger.info("created the consumer group", metadata: ["group": "\(keys.group)", "stream": "\(keys.requests)"])
            forgetCachedTasks()
        }
        // Entries this consumer read before a crash or a lost connection: dead-letter those
        // delivered too often, then process the rest (their stored replies make this idempotent).
        let own = try commands.execute(RedisCommand("XPENDING", keys.requests, keys.group, "-", "+", 10_000, configuration.consumer))
        try deadLetter(Self.overdelivered(own, limit: configuration.maxDeliveries), minIdle: 0)
        var cursor = "0"
        for _ in 0..<1000 {
            let reply = try commands.value(
                of: RedisCommand(
                    "XREADGROUP",
                    "GROUP",
                    keys.group,
                    configuration.consumer,
                    "COUNT",
                    configuration.batchSize,
                    "STREAMS",
                    keys.requests,
                    cursor
                )
            )
            let entries = StreamEntry.fromReadGroup(reply)
            guard let last = entries.last else { break }
            try await handle(entries)
            cursor = last.id
        }
    }

    /// Checks the request's token (when authentication is on) and names whom it counts against
    /// for rate limits: the token's caller, or without authentication the reply channel.
    private func authorize(_ request: inout PatchRequest) async {
        guard request.rejection == nil else { return }
        guard let authenticator else {
            request.rateLimitKey = request.replyTo
            return
        }
        let outcome: Authorization
        if let known = authenticator.authorizeKnown(request.authorization, for: .write) {
            outcome = known
        } else {
            outcome = await authenticator.authorize(request.authorization, for: .write)
        }
        switch outcome {
        case .allowed(let caller): request.rateLimitKey = caller.id
        case .denied(let response): request.rejection = response
        }
    }

    /// Decodes, processes, answers and acknowledges one batch, split by task into parts: the
    /// workers start theirs, the consumer processes the first, then waits for the workers.
    func handle(_ entries: [StreamEntry]) async throws(RedisError) {
        let count = workers.count + 1
        var parts = [(requests: [PatchRequest], entryIds: [String])](repeating: ([], []), count: count)
        for entry in entries {
            // An entry deleted while pending has no fields: it is only acknowledged.
            guard let fields = entry.fields else {
                parts[0].entryIds.append(entry.id)
                continue
            }
            var request = decoder.decode(entryId: entry.id, fields: fields)
            await authorize(&request)
            let part = count == 1 ? 0 : Int(UInt(bitPattern: request.taskId.hashValue) % UInt(count))
            parts[part].requests.append(consume request)
            parts[part].entryIds.append(entry.id)
        }
        metrics.batchSize.record(entries.count)
        let started = workers.indices.filter { !parts[$0 + 1].entryIds.isEmpty }
        for k in started { workers[k].start(parts[k + 1].requests, acknowledging: parts[k + 1].entryIds) }
        var failure: RedisError?
        if !parts[0].entryIds.isEmpty {
            do {
                _ = try processor.process(parts[0].requests, acknowledging: parts[0].entryIds)
            } catch {
                failure = error
            }
        }
        // Every started part is waited for, failed or not: its worker is then free again.
        for k in started {
            if case .failure(let error) = workers[k].finish(), failure == nil { failure = error }
        }
        if let failure { throw failure }
    }
}
