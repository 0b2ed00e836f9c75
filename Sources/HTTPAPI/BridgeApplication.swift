//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Bridge
public import Logging
public import Prometheus
public import ServiceLifecycle

/// The whole bridge, wired from its configuration: the stream consumer, the HTTP API and its
/// queue, health and metrics. The command line and the tests build it the same way.
public struct BridgeApplication: Sendable {
    /// The services to run in one `ServiceGroup`.
    public let services: [any Service]
    public let status: BridgeStatus

    /// - Parameters:
    ///   - metrics: the registry `/metrics` shows (the caller bootstraps swift-metrics with it).
    ///   - onServerRunning: called with the HTTP port once the server listens.
    public init(
        configuration: BridgeConfiguration,
        http: HTTPConfiguration,
        metrics: PrometheusCollectorRegistry? = nil,
        logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        let bridgeMetrics = BridgeMetrics()
        let status = BridgeStatus(shards: configuration.shards)
        let authenticator = configuration.auth.isEnabled ? try await Authenticator(configuration: configuration.auth) : nil
        let bridge = BridgeService(
            configuration: configuration,
            authenticator: authenticator,
            status: status,
            metrics: bridgeMetrics,
            logger: logger
        )
        let queue = UpdateQueue(configuration: configuration, metrics: bridgeMetrics, status: status, logger: logger)
        let hub = ChangeFeedHub(configuration: configuration, logger: logger)
        let server = buildHTTPApplication(
            configuration: http,
            health: HealthProbe(configuration: configuration, status: status),
            services: HTTPServices(queue: queue, hub: hub, authenticator: authenticator, configuration: configuration, metrics: metrics),
            logger: logger,
            onServerRunning: onServerRunning
        )
        // A graceful shutdown goes from the last service to the first: the watches end first,
        // so that the server's open connections can close.
        self.services = [
            bridge, queue, NamedService(server, what: "the HTTP\(http.tls == nil ? "" : "S") server on \(http.host):\(http.port)"), hub,
        ]
        self.status = status
    }
}

/// A service whose failure names it: a bare `bind(...)` error does not say which address the
/// process could not take.
struct NamedService<Base: Service>: Service {
    let base: Base
    let what: String

    init(_ base: Base, what: String) {
        self.base = base
        self.what = what
    }

    func run() async throws {
        do {
            try await base.run()
        } catch {
            throw Failure(description: "\(what) failed: \(error)")
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }
}
