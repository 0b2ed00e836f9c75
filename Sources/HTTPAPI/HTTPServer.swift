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

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the HTTP server listens, and the limits of its edge: timeouts, the cap on connections,
/// the size of a request head, and TLS.
public struct HTTPConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// How long a request head may take: from the accept for a connection's first request (a TLS
    /// handshake included), from its first byte for a later one.
    public var headerTimeout: Duration
    /// How long a request's whole body may take, from its head: a total, not a gap between reads.
    public var bodyTimeout: Duration
    /// How long a keep-alive connection waits for the next request after an answer.
    public var idleTimeout: Duration
    /// Open connections at most; new ones past it are closed as they are accepted.
    public var maxConnections: Int
    /// The largest request head (request line and fields), in bytes; larger is answered 431.
    public var maxHeadBytes: Int
    /// HTTPS when set.
    public var tls: HTTPTLSConfiguration?

    public init(
        host: String = Defaults.host,
        port: Int = Defaults.port,
        headerTimeout: Duration = .seconds(Defaults.headerTimeoutSeconds),
        bodyTimeout: Duration = .seconds(Defaults.bodyTimeoutSeconds),
        idleTimeout: Duration = .seconds(Defaults.idleTimeoutSeconds),
        maxConnections: Int = Defaults.maxConnections,
        maxHeadBytes: Int = Defaults.maxHeadBytes,
        tls: HTTPTLSConfiguration? = nil
    ) {
        self.host = host
        self.port = port
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
        self.maxHeadBytes = maxHeadBytes
        self.tls = tls
    }

    /// The documented defaults (see `BridgeConfiguration.Defaults`): the timeouts as nginx and Go's
    /// net/http practice has them (docs/configuration.md says why each).
    public enum Defaults {
        public static let host = "127.0.0.1"
        public static let port = 8080
        public static let headerTimeoutSeconds = 10
        public static let bodyTimeoutSeconds = 30
        public static let idleTimeoutSeconds = 60
        public static let maxHeadBytes = 16 * 1024
        /// The cap on connections when the descriptor limit allows it: as many as updates may wait
        /// for the HTTP worker (`BridgeConfiguration.Defaults.httpQueueLimit`), since a connection
        /// has one request in flight at a time; about 15 KB each while idle (measured), 60 MB in all.
        public static let maxConnectionsCeiling = 4096
        /// Descriptors the cap leaves to the rest of the process: Redis connections, the listening
        /// socket, files.
        public static let reservedDescriptors = 128

        /// The cap on connections: ``maxConnectionsCeiling``, or the process's descriptor limit
        /// (`ulimit -n`) less ``reservedDescriptors`` when that is lower. A connection past the
        /// descriptor limit would not be refused cheaply: `accept` fails, and NIO stops accepting
        /// anyone for a while.
        public static var maxConnections: Int { maxConnections(descriptorLimit: openFileLimit()) }

        static func maxConnections(descriptorLimit: Int?) -> Int {
            guard let descriptorLimit else { return maxConnectionsCeiling }
            return max(1, min(maxConnectionsCeiling, descriptorLimit - reservedDescriptors))
        }

        /// The soft `RLIMIT_NOFILE`; `nil` when unlimited (`RLIM_INFINITY`, all ones) or unknown.
        static func openFileLimit() -> Int? {
            var limit = rlimit()
            guard getrlimit(resourceLimitNoFile, &limit) == 0, limit.rlim_cur < rlim_t(Int.max) else { return nil }
            return Int(clamping: limit.rlim_cur)
        }
    }
}

#if canImport(Glibc)
private let resourceLimitNoFile = Int32(RLIMIT_NOFILE.rawValue)
#else
private let resourceLimitNoFile = RLIMIT_NOFILE
#endif

/// What the HTTP server serves besides health: the task-status API and the metrics.
public struct HTTPServices: Sendable {
    public var queue: UpdateQueue?
    /// Live updates for the watch routes.
    public var hub: ChangeFeedHub?
    public var authenticator: Authenticator?
    public var configuration: BridgeConfiguration?
    public var metrics: PrometheusCollectorRegistry?

    public init(
        queue: UpdateQueue? = nil,
        hub: ChangeFeedHub? = nil,
        authenticator: Authenticator? = nil,
        configuration: BridgeConfiguration? = nil,
        metrics: PrometheusCollectorRegistry? = nil
    ) {
        self.queue = queue
        self.hub = hub
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
    var routes = KnownRoutes()
    HealthRoutes(probe: health).add(to: router, recording: &routes)
    if let queue = services.queue, let bridge = services.configuration {
        TaskStatusRoutes(queue: queue, hub: services.hub, authenticator: services.authenticator, configuration: bridge).add(
            to: router,
            recording: &routes
        )
        PageRoute().add(to: router, recording: &routes)
        OpenAPIRoute(configuration: bridge, services: services).add(to: router, recording: &routes)
    }
    if let registry = services.metrics {
        MetricsRoute(registry: registry).add(to: router, recording: &routes)
    }
    // Added after every route, so that it wraps only the router's not-found answer.
    router.add(middleware: MethodNotAllowedMiddleware(routes: routes))
    let maxBodyBytes = services.configuration?.limits.maxPatchBytes ?? RequestLimits.Defaults.maxPatchBytes
    return Application(
        router: router,
        server: HTTPEdge.server(configuration: configuration, maxBodyBytes: maxBodyBytes, logger: logger),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "task-status-bridge"),
        onServerRunning: { channel in
            if let port = channel.localAddress?.port { await onServerRunning(port) }
        },
        logger: logger
    )
}
