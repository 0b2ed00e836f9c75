//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Logging
import Metrics
public import Redis
public import ServiceLifecycle
import Synchronization
import TaskStatus

/// The stream consumer: reads requests in batches with `XREADGROUP`, hands them to the
/// ``UpdatePipeline``, and between batches claims entries of dead consumers, moves entries
/// delivered too often to the dead-letter stream, trims the request stream and removes dead
/// consumers. It survives Redis restarts (reconnecting with capped back-off, recreating its group)
/// and on graceful shutdown stops reading, finishes the batch it holds and returns.
public struct BridgeService: Service, CustomStringConvertible {
    let configuration: BridgeConfiguration
    let pipeline: UpdatePipeline
    let reader: RedisClient
    let commands: RedisClient
    let status: BridgeStatus
    let metrics: BridgeMetrics
    let logger: Logger
    let decoder: RequestDecoder

    /// - Parameters:
    ///   - commands: the connection the pipeline uses; maintenance shares it.
    public init(
        configuration: BridgeConfiguration,
        pipeline: UpdatePipeline,
        commands: RedisClient,
        status: BridgeStatus,
        metrics: BridgeMetrics,
        logger: Logger
    ) {
        self.configuration = configuration
        self.pipeline = pipeline
        self.commands = commands
        self.status = status
        self.metrics = metrics
        self.logger = logger
        var readerConfiguration = configuration.redis
        // A blocking read needs a socket timeout longer than its BLOCK.
        readerConfiguration.commandTimeout = configuration.blockTimeout + .seconds(10)
        self.reader = RedisClient(configuration: readerConfiguration, name: "redis-reader")
        self.decoder = RequestDecoder(limits: configuration.limits, requireExperimentalFlag: configuration.requireExperimentalFlag)
    }

    public var description: String { "BridgeService(consumer: \(configuration.consumer), stream: \(keys.requests))" }

    public func run() async throws {
        let stopping = Atomic<Bool>(false)
        await withGracefulShutdownHandler {
            await consume(until: stopping)
        } onGracefulShutdown: {
            stopping.store(true, ordering: .relaxed)
        }
        logger.info("bridge stopped", metadata: ["consumer": "\(configuration.consumer)"])
    }

    var keys: Keys { configuration.keys }

    private func consume(until stopping: borrowing Atomic<Bool>) async {
        var needsSetup = true
        var maintenance = MaintenanceClock(configuration: configuration)
        var backoff = Duration.milliseconds(100)
        logger.info(
            "bridge starting",
            metadata: ["consumer": "\(configuration.consumer)", "stream": "\(keys.requests)", "redis": "\(configuration.redis)"]
        )
        while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
            do {
                if needsSetup {
                    try await setUp()
                    needsSetup = false
                }
                try await maintain(&maintenance)
                let reply = try await reader.execute([
                    RedisCommand(
                        "XREADGROUP",
                        "GROUP",
                        keys.group,
                        configuration.consumer,
                        "COUNT",
                        configuration.batchSize,
                        "BLOCK",
                        configuration.blockTimeout.milliseconds,
                        "STREAMS",
                        keys.requests,
                        ">"
                    )
                ])[0].get()
                let entries = StreamEntry.fromReadGroup(reply)
                if !entries.isEmpty { try await handle(entries) }
                status.markConsuming()
                backoff = .milliseconds(100)
            } catch {
                if error.serverErrorPrefix == "NOGROUP" {
                    logger.warning("the consumer group is gone (Redis lost its data?); recreating it", metadata: ["stream": "\(keys.requests)"])
                    needsSetup = true
                    await pipeline.forgetCachedTasks()
                    continue
                }
                status.markProblem(error.message)
                logger.error("redis failed; retrying", metadata: ["error": "\(error)", "retry.in": "\(backoff)"])
                needsSetup = true
                await sleep(backoff, unless: stopping)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// Creates the group when missing and settles what this consumer left pending.
    private func setUp() async throws(RedisError) {
        let created = try await commands.execute([RedisCommand("XGROUP", "CREATE", keys.requests, keys.group, "0", "MKSTREAM")])[0]
        if case .error(let message) = created, !message.hasPrefix("BUSYGROUP") {
            throw RedisError(code: .serverError, message: message)
        }
        if created == .status("OK") {
            logger.info("created the consumer group", metadata: ["group": "\(keys.group)", "stream": "\(keys.requests)"])
            await pipeline.forgetCachedTasks()
        }
        // Entries this consumer read before a crash or a lost connection: dead-letter those
        // delivered too often, then process the rest (their stored replies make this idempotent).
        let own = try await commands.execute(
            RedisCommand("XPENDING", keys.requests, keys.group, "-", "+", 10_000, configuration.consumer)
        )
        try await deadLetter(Self.overdelivered(own, limit: configuration.maxDeliveries), minIdle: 0)
        var cursor = "0"
        for _ in 0..<1000 {
            let reply = try await commands.execute(
                RedisCommand(
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

    /// Decodes, processes, answers and acknowledges one batch.
    func handle(_ entries: [StreamEntry]) async throws(RedisError) {
        var requests: [PatchRequest] = []
        requests.reserveCapacity(entries.count)
        var deleted: [String] = []
        for entry in entries {
            guard let fields = entry.fields else {
                deleted.append(entry.id)
                continue
            }
            requests.append(decoder.decode(entryId: entry.id, fields: fields))
        }
        metrics.batchSize.record(entries.count)
        _ = try await pipeline.process(requests, acknowledging: entries.map(\.id))
        if !deleted.isEmpty {
            logger.debug("acknowledged entries deleted while pending", metadata: ["entries": "\(deleted)"])
        }
    }

    private func sleep(_ duration: Duration, unless stopping: borrowing Atomic<Bool>) async {
        var left = duration
        while left > .zero, !stopping.load(ordering: .relaxed), !Task.isCancelled {
            let step = min(left, .milliseconds(100))
            try? await Task.sleep(for: step)
            left -= step
        }
    }
}

/// When each periodic job is next due.
struct MaintenanceClock {
    let claimEvery: Duration
    let trimEvery: Duration
    let consumersEvery: Duration
    var nextClaim: ContinuousClock.Instant
    var nextTrim: ContinuousClock.Instant
    var nextConsumers: ContinuousClock.Instant

    init(configuration: BridgeConfiguration) {
        claimEvery = min(max(configuration.claimIdle / 2, .milliseconds(100)), .seconds(5))
        trimEvery = configuration.trimInterval
        consumersEvery = min(max(configuration.deadConsumerIdle / 4, .seconds(1)), .seconds(60))
        let now = ContinuousClock.now
        nextClaim = now
        nextTrim = now
        nextConsumers = now
    }
}
