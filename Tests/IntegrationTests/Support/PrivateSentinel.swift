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
    private let process: Process

    /// - Parameter settings: further `sentinel ...` lines (for example `auth-user`), written after
    ///   the `monitor` line they refer to.
    init(monitoring name: String, masterPort: Int, settings: [String] = []) throws {
        port = PrivateRedis.freePort()
        let parent = ProcessInfo.processInfo.environment["TASKSTATUS_TEST_TMP"] ?? "/tmp"
        directory = URL(fileURLWithPath: parent).appendingPathComponent("tsb-sentinel-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let lines =
            [
                "port \(port)", "bind 127.0.0.1", "dir \(directory.path)", "logfile \(directory.appendingPathComponent("sentinel.log").path)",
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
        let client = RedisClient(configuration: .init(endpoint: .tcp(host: "127.0.0.1", port: port)), name: "sentinel-check")
        return try? await client.execute(RedisCommand(arguments[0], arguments: Array(arguments.dropFirst())))
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }
}
