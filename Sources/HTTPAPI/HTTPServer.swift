//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Bridge
public import Hummingbird
public import Logging
public import Prometheus

/// Where the HTTP server listens.
public struct HTTPConfiguration: Sendable {
    public var host: String
    public var port: Int

    public init(host: String = Defaults.host, port: Int = Defaults.port) {
        self.host = host
        self.port = port
    }

    /// The documented defaults (see `BridgeConfiguration.Defaults`).
    public enum Defaults {
        public static let host = "127.0.0.1"
        public static let port = 8080
    }
}

/// What the HTTP server serves besides health: the task-status API and the metrics.
public struct HTTPServices: Sendable {
    public var queue: UpdateQueue?
    public var authenticator: Authenticator?
    public var configuration: BridgeConfiguration?
    public var metrics: PrometheusCollectorRegistry?

    public init(
        queue: UpdateQueue? = nil,
        authenticator: Authenticator? = nil,
        configuration: BridgeConfiguration? = nil,
        metrics: PrometheusCollectorRegistry? = nil
    ) {
        self.queue = queue
        self.authenticator = authenticator
        self.configuration = configuration
        self.metrics = metrics
    }
}

/// Builds the HTTP application: health, readiness, and, when given, the task-status API and the
/// metrics; it runs as a service beside the bridge.
///
/// - Parameter onServerRunning: called with the bound port once the server listens (useful with
///   port 0, which picks a free one).
public func buildHTTPApplication(
    configuration: HTTPConfiguration,
    health: HealthProbe,
    services: HTTPServices = HTTPServices(),
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router(context: APIRequestContext.self)
    HealthRoutes(probe: health).add(to: router)
    if let queue = services.queue, let bridge = services.configuration {
        TaskStatusRoutes(queue: queue, authenticator: services.authenticator, configuration: bridge).add(to: router)
    }
    if let registry = services.metrics {
        MetricsRoute(registry: registry).add(to: router)
    }
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "task-status-bridge"),
        onServerRunning: { channel in
            if let port = channel.localAddress?.port { await onServerRunning(port) }
        },
        logger: logger
    )
}
