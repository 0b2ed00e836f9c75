//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation

/// The built `task-status-bridge` executable, run as a child process (for tests that kill it).
final class BridgeProcess: @unchecked Sendable {
    // `process` is set once in init and only read afterwards.
    let process: Process
    let log: URL

    /// The executable next to the test bundle (`swift build` puts both in the same folder).
    static var executable: URL {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundle, bundle.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent("task-status-bridge")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return bundle.appendingPathComponent("task-status-bridge")
    }

    static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: executable.path) }

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        log = FileManager.default.temporaryDirectory.appendingPathComponent("bridge-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// A `serve` process on `space`'s prefix with test-friendly timings.
    static func serve(_ space: TestSpace, consumer: String, extra: [String] = []) throws -> BridgeProcess {
        try BridgeProcess(
            [
                "serve", "--no-auth", "--http-port", "0", "--prefix", space.prefix, "--consumer", consumer, "--claim-idle-ms", "300",
                "--block-ms", "100", "--log-level", "warning",
            ] + extra,
            environment: ["REDIS_URL": TestRedis.url!]
        )
    }

    func kill(_ signal: Int32) {
        Foundation.kill(process.processIdentifier, signal)
    }

    /// Waits for the process to end (bounded); its exit status, or nil if it did not end.
    func waitForExit(timeout: Duration = .seconds(15)) async -> Int32? {
        let ended = await eventually(timeout: timeout) { process.isRunning ? nil : true }
        return ended == true ? process.terminationStatus : nil
    }

    var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    deinit {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: log)
    }
}
