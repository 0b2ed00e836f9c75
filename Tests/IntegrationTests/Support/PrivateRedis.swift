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

/// A `redis-server` of the test's own on a Unix socket, for tests that stop and restart Redis
/// or need a server configured differently (ACL users).
final class PrivateRedis: @unchecked Sendable {
    // Only used from the test that owns it, one call at a time.
    let directory: URL
    var socket: String { directory.appendingPathComponent("redis.sock").path }
    /// A TCP port on loopback (for replication, which needs one), or 0: the Unix socket only.
    /// With TLS, the TLS port: the server then has no plain TCP port.
    let port: Int
    /// With TLS: the name of the certificate it presents (see ``TestTLS``).
    var certificate: String?
    var url: String { port == 0 ? "unix://\(socket)" : "\(certificate == nil ? "redis" : "rediss")://127.0.0.1:\(port)/0" }
    /// The Unix socket, plain even when TCP is TLS only: for the test's own checks.
    var adminURL: String { "unix://\(socket)" }
    private var process: Process?
    private var extraArguments: [String]

    static var isAvailable: Bool { (try? executable()) != nil }

    static func executable() throws -> URL {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let url = URL(fileURLWithPath: String(dir)).appendingPathComponent("redis-server")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw CocoaError(.fileNoSuchFile)
    }

    /// - Parameters:
    ///   - tcp: listen on a free loopback port too (replicas need one).
    ///   - tls: listen in TLS only on that port, presenting this certificate of ``TestTLS``, and
    ///     require client certificates (`tls-auth-clients yes`).
    init(_ extraArguments: [String] = [], tcp: Bool = false, tls certificate: String? = nil) throws {
        port = tcp || certificate != nil ? Self.freePort() : 0
        self.certificate = certificate
        // Unix socket paths are short; keep the folder name short too. Under scripts/test the
        // folder is inside the test run's own, so that the script stops any server a test killed
        // by its time limit left behind.
        let parent = ProcessInfo.processInfo.environment["TASKSTATUS_TEST_TMP"] ?? "/tmp"
        directory = URL(fileURLWithPath: parent).appendingPathComponent("tsb-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.extraArguments = extraArguments
        try start()
    }

    func start() throws {
        let process = Process()
        process.executableURL = try Self.executable()
        let ports = certificate.map { TestTLS.serverArguments(port: port, certificate: $0) } ?? ["--port", String(port)]
        process.arguments =
            ports + [
                "--bind", "127.0.0.1", "--unixsocket", socket, "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                "--dir", directory.path,
            ] + extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: socket) { usleep(10_000) }
        usleep(50_000)
    }

    /// Starts it again on the same port, presenting another certificate (a server whose
    /// certificate changed, or expired, while the bridge runs).
    func restart(presenting certificate: String) async throws {
        await stop()
        self.certificate = certificate
        try start()
    }

    /// Stops the process where it is (SIGSTOP), as a stalled server would be; ``resume()`` lets it go on.
    func pause() {
        if let process, process.isRunning { kill(process.processIdentifier, SIGSTOP) }
    }

    func resume() {
        if let process, process.isRunning { kill(process.processIdentifier, SIGCONT) }
    }

    /// A TCP port on loopback that nothing listens on.
    static func freePort() -> Int {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Kills the server (as a crash would) and waits, bounded, until it is gone. SIGKILL because a
    /// child inherits ignored signals, and the test process may ignore SIGTERM; and no
    /// `Process.waitUntilExit`, which spins a run loop when called from a task.
    func stop() async {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        _ = await eventually(timeout: .seconds(10)) { process.isRunning ? nil : true }
        try? FileManager.default.removeItem(atPath: socket)
        self.process = nil
    }

    deinit {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGCONT)
            kill(process.processIdentifier, SIGKILL)
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
