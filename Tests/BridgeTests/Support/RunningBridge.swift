//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import Foundation
import HTTPAPI
import Logging
import Metrics
import Prometheus
import Redis
import ServiceLifecycle
import Synchronization

/// A bridge running in this process, stopped gracefully by `stop()`.
final class RunningBridge: Sendable {
    let group: ServiceGroup
    let task: Task<Void, any Error>
    let configuration: BridgeConfiguration
    /// The HTTP port, once the server listens (the tests ask for port 0: any free one).
    let httpPort = PortBox()

    init(configuration: BridgeConfiguration, http: HTTPConfiguration? = nil) async throws {
        self.configuration = configuration
        let logger = TestRedis.logger
        let port = httpPort
        let application = try await BridgeApplication(
            configuration: configuration,
            http: http ?? HTTPConfiguration(host: "127.0.0.1", port: 0),
            metrics: TestMetrics.registry,
            logger: logger,
            onServerRunning: { bound in port.value.withLock { $0 = bound } }
        )
        let group = ServiceGroup(configuration: .init(services: application.services, logger: logger))
        self.group = group
        self.task = Task { try await group.run() }
    }

    /// A bridge with test-friendly timings on `space`'s prefix.
    convenience init(
        _ space: TestSpace,
        consumer: String = "test-bridge",
        http: HTTPConfiguration? = nil,
        _ adjust: (inout BridgeConfiguration) -> Void = { _ in }
    ) async throws {
        var configuration = BridgeConfiguration(
            redis: space.configuration,
            prefix: space.prefix,
            consumer: consumer,
            batchSize: 64,
            blockTimeout: .milliseconds(100),
            claimIdle: .milliseconds(500),
            trimInterval: .milliseconds(200)
        )
        adjust(&configuration)
        try await self.init(configuration: configuration, http: http)
    }

    /// The base URL of the HTTP server, once it listens.
    func baseURL() async -> String? {
        let port = await eventually(timeout: .seconds(5)) { httpPort.value.withLock { $0 } }
        return port.map { "http://127.0.0.1:\($0)" }
    }

    /// Graceful shutdown: finishes what it holds, then returns.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

final class PortBox: Sendable {
    let value = Mutex<Int?>(nil)
}

/// One Prometheus registry for the whole test process (swift-metrics is bootstrapped once).
enum TestMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}
