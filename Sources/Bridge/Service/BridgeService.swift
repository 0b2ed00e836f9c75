//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Logging
import Redis
public import ServiceLifecycle
import Synchronization

/// The stream consumer as a service: reads requests in batches with `XREADGROUP`, decides,
/// commits and answers them, and between batches claims entries of dead consumers, moves entries
/// delivered too often to the dead-letter stream, trims the request stream and removes dead
/// consumers. It survives Redis restarts (reconnecting with capped back-off, recreating its group)
/// and on graceful shutdown stops reading, finishes the batch it holds and returns.
public struct BridgeService: Service, CustomStringConvertible {
    let configuration: BridgeConfiguration
    /// One per shard: one `XREADGROUP` cannot read streams in several slots.
    let consumers: [StreamConsumer]
    let status: BridgeStatus
    let logger: Logger

    /// - Parameter authenticator: checks each entry's `authorization`; `nil` runs without authentication.
    public init(
        configuration: BridgeConfiguration,
        authenticator: Authenticator? = nil,
        status: BridgeStatus,
        metrics: BridgeMetrics,
        logger: Logger
    ) {
        self.configuration = configuration
        self.status = status
        self.logger = logger
        self.consumers = (0..<configuration.shards).map { k in
            StreamConsumer(
                configuration: configuration.forShard(k),
                authenticator: authenticator,
                status: status,
                metrics: metrics,
                logger: logger
            )
        }
    }

    public var description: String { "BridgeService(consumer: \(configuration.consumer), streams: \(streams))" }

    /// The request streams the consumers read, for logs.
    private var streams: String { consumers.map(\.keys.requests).joined(separator: ",") }

    public func run() async throws {
        let stop = StopSignal()
        logger.info(
            "bridge starting",
            metadata: [
                "consumer": "\(configuration.consumer)", "streams": "\(streams)",
                "redis": "\(configuration.redis)",
            ]
        )
        // With Sentinel, the failover events (see ReplicationCheck and the consumer's back-off)
        // come from watchers that run as long as the service does.
        let watch = configuration.redis.sentinel.map { SentinelRouter.shared(for: $0).startWatching() }
        defer { watch?.stop() }
        // The loop runs on the consumer's own thread: no hop out and back per batch.
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for consumer in consumers { group.addTask { await consumer.run(until: stop) } }
            }
        } onGracefulShutdown: {
            stop.set()
        }
        logger.info("bridge stopped", metadata: ["consumer": "\(configuration.consumer)"])
    }
}

/// Set once, when the service is asked to stop; read by the consumer between batches.
final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)

    func set() { flag.store(true, ordering: .relaxed) }

    var isSet: Bool { flag.load(ordering: .relaxed) }
}

/// When each periodic job is next due.
struct MaintenanceClock {
    let claimEvery: Duration
    let trimEvery: Duration
    let consumersEvery: Duration
    /// How often retention looks for completed tasks to remove (when it is on).
    static let retentionEvery = Duration.seconds(60)
    var nextRetention: ContinuousClock.Instant
    /// Where the sweep of removed tasks' stored replies is in each node's keyspace.
    var replyCursors: [String: String] = [:]
    var nextClaim: ContinuousClock.Instant
    var nextTrim: ContinuousClock.Instant
    var nextConsumers: ContinuousClock.Instant
    /// When the request stream was last trimmed, and whether a trim is owed (entries handled
    /// since, or the last trim held back by an entry pending).
    var lastTrim: ContinuousClock.Instant
    var trimOwed = true
    /// The longest an idle shard goes untrimmed.
    static let idleTrimEvery = Duration.seconds(60)

    init(configuration: BridgeConfiguration) {
        claimEvery = min(max(configuration.claimIdle / 2, .milliseconds(100)), .seconds(5))
        trimEvery = configuration.trimInterval
        consumersEvery = min(max(configuration.deadConsumerIdle / 4, .seconds(1)), .seconds(60))
        let now = ContinuousClock.now
        nextClaim = now
        nextTrim = now
        nextConsumers = now
        nextRetention = now
        lastTrim = now
    }
}
