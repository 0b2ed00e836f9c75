//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import Redis

#if canImport(Glibc)
import Glibc
#endif

/// A Redis Sentinel of the test's own on a free loopback port, monitoring one master; its folder
/// (configuration, log) goes away with it.
final class PrivateSentinel: @unchecked Sendable {
    // Set once in init, only read afterwards.
    let directory: URL
    let port: Int
    /// Whether its own port speaks TLS (it always reaches TLS data nodes in TLS when `tlsNodes`).
    let tls: Bool
    private let process: Process

    /// - Parameters:
    ///   - settings: further `sentinel ...` lines (for example `auth-user`), written after the
    ///     `monitor` line they refer to.
    ///   - tls: its port speaks TLS only (``TestTLS``'s `redis` certificate, client certificates
    ///     required).
    ///   - tlsNodes: it reaches the data nodes in TLS (`tls-replication yes`), presenting that
    ///     certificate as its client certificate.
    init(monitoring name: String, masterPort: Int, settings: [String] = [], tls: Bool = false, tlsNodes: Bool = false) throws {
        port = PrivateRedis.freePort()
        let parent = ProcessInfo.processInfo.environment["TASKSTATUS_TEST_TMP"] ?? "/tmp"
        directory = URL(fileURLWithPath: parent).appendingPathComponent("tsb-sentinel-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.tls = tls
        let ports = tls ? ["port 0", "tls-port \(port)"] : ["port \(port)"]
        let tlsLines =
            tls || tlsNodes
            ? [
                "tls-cert-file \(TestTLS.path("redis.crt"))", "tls-key-file \(TestTLS.path("redis.key"))",
                "tls-ca-cert-file \(TestTLS.path("ca.crt"))", "tls-auth-clients yes", "tls-replication \(tlsNodes ? "yes" : "no")",
            ] : []
        let lines =
            ports + tlsLines + [
                "bind 127.0.0.1", "dir \(directory.path)", "logfile \(directory.appendingPathComponent("sentinel.log").path)",
                "sentinel monitor \(name) 127.0.0.1 \(masterPort) 2", "sentinel down-after-milliseconds \(name) 1000",
                "sentinel failover-timeout \(name) 10000",
            ] + settings
        let configuration = directory.appendingPathComponent("sentinel.conf")
        try (lines.joined(separator: "\n") + "\n").write(to: configuration, atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = try PrivateRedis.executable()
        process.arguments = [configuration.path, "--sentinel"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    var node: SentinelConfiguration.Node { .init(host: "127.0.0.1", port: port) }

    var log: String { (try? String(contentsOf: directory.appendingPathComponent("sentinel.log"), encoding: .utf8)) ?? "" }

    /// A command to this sentinel (no password), or nil when it does not answer.
    func ask(_ arguments: String...) async -> RedisReply? {
        let configuration = RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port), tls: tls ? TestTLS.settings() : nil)
        let client = RedisClient(configuration: configuration, name: "sentinel-check")
        return try? await client.execute(RedisCommand(arguments[0], arguments: Array(arguments.dropFirst())))
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }
}
