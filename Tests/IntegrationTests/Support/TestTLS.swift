//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import Redis

/// The certificates `scripts/test` makes (scripts/lib/make-certs --negative) in
/// `$TASKSTATUS_TEST_TLS`: a CA, the servers' `redis` certificate (localhost, 127.0.0.1), the
/// bridge's `client` certificate, and those that must be refused (`expired`, `wrong-name`,
/// `other-redis` and `other-client` from `other-ca`).
enum TestTLS {
    static let directory = ProcessInfo.processInfo.environment["TASKSTATUS_TEST_TLS"]
    static var isAvailable: Bool { directory != nil && PrivateRedis.isAvailable }

    static func path(_ file: String) -> String { "\(directory ?? "/nonexistent")/\(file)" }

    /// The bridge's settings: trusting the test CA, with the client certificate `client`.
    static func settings(client: String? = "client", ca: String = "ca", serverName: String? = nil) -> RedisTLSConfiguration {
        RedisTLSConfiguration(
            caFile: path("\(ca).crt"),
            certificateFile: client.map { path("\($0).crt") },
            keyFile: client.map { path("\($0).key") },
            serverName: serverName
        )
    }

    /// A configuration for `url` (rediss:// or redis://) with these TLS settings.
    static func configuration(_ url: String, tls: RedisTLSConfiguration? = settings()) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        configuration.tls = tls
        return configuration
    }

    /// redis-server's arguments for a TLS-only port presenting `certificate`, trusting the test
    /// CA, requiring client certificates.
    static func serverArguments(port: Int, certificate: String) -> [String] {
        [
            "--port", "0", "--tls-port", String(port), "--tls-cert-file", path("\(certificate).crt"), "--tls-key-file",
            path("\(certificate).key"), "--tls-ca-cert-file", path("ca.crt"), "--tls-auth-clients", "yes",
        ]
    }
}
