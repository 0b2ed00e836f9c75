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

/// A bridge running in this process, for the length of a `with` block.
final class RunningBridge: Sendable {
    let group: ServiceGroup
    let task: Task<Void, any Error>
    let configuration: BridgeConfiguration
    /// The HTTP port, once the server listens (the tests ask for port 0: any free one).
    let httpPort = PortBox()

    private init(configuration: BridgeConfiguration, http: HTTPConfiguration? = nil) async throws {
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
    private convenience init(
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

    /// Runs `body` with a bridge on `space`'s prefix (test-friendly timings, adjusted by
    /// `configure`), and stops the bridge when `body` returns or throws.
    static func with(
        _ space: TestSpace,
        consumer: String = "test-bridge",
        http: HTTPConfiguration? = nil,
        configure: (inout BridgeConfiguration) -> Void = { _ in },
        _ body: (RunningBridge) async throws -> Void
    ) async throws {
        let bridge = try await RunningBridge(space, consumer: consumer, http: http, configure)
        try await bridge.stopping(after: body)
    }

    /// Runs `body` with a bridge of this configuration, and stops it when `body` returns or throws.
    static func with(
        configuration: BridgeConfiguration,
        http: HTTPConfiguration? = nil,
        _ body: (RunningBridge) async throws -> Void
    ) async throws {
        let bridge = try await RunningBridge(configuration: configuration, http: http)
        try await bridge.stopping(after: body)
    }

    private func stopping(after body: (RunningBridge) async throws -> Void) async throws {
        do {
            try await body(self)
            try await stop()
        } catch {
            try? await stop()
            throw error
        }
    }

    /// The base URL of the HTTP server, once it listens.
    func baseURL() async -> String? {
        let port = await eventually(timeout: .seconds(5)) { httpPort.value.withLock { $0 } }
        return port.map { "http://127.0.0.1:\($0)" }
    }

    /// Graceful shutdown: finishes what it holds, then returns. Tests use ``with(_:consumer:http:configure:_:)``,
    /// which calls it on every path.
    private func stop() async throws {
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
