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

/// Where the HTTP server listens.
public struct HTTPConfiguration: Sendable {
    public var host: String
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

/// Builds the HTTP application: health and readiness now; it runs as a service beside the bridge.
///
/// - Parameter onServerRunning: called with the bound port once the server listens (useful with
///   port 0, which picks a free one).
public func buildHTTPApplication(
    configuration: HTTPConfiguration,
    health: HealthProbe,
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router()
    HealthRoutes(probe: health).add(to: router)
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "task-status-bridge"),
        onServerRunning: { channel in
            if let port = channel.localAddress?.port { await onServerRunning(port) }
        },
        logger: logger
    )
}
