//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import Glibc
import TestFixtures
import Testing

/// The HTTP edge of a bridge process under slow and hostile clients, with short timeouts (header
/// 1 s, body 2 s, idle 2 s) so that a round takes seconds; and HTTPS, checked with curl.
@Suite(
    "HTTP edge: slow and hostile clients, the connection cap, HTTPS",
    .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"),
    .enabled(if: BridgeProcess.isAvailable, "the task-status-bridge executable is not built"),
    .serialized,
    .timeLimit(.minutes(3))
)
struct HTTPEdgeTests {
    static let shortTimeouts = ["--http-header-timeout", "1", "--http-body-timeout", "2", "--http-idle-timeout", "2"]
    static let patchHead = "PATCH /task-status/v1/t1 HTTP/1.1\r\nHost: test\r\nContent-Type: application/json-patch+json\r\n"

    /// A bridge process on a port of its own, once its HTTP server answers.
    static func serve(_ space: TestSpace, _ extra: [String]) async throws -> (BridgeProcess, Int) {
        let port = PrivateRedis.freePort()
        let bridge = try BridgeProcess.serve(space, consumer: "edge", extra: ["--http-port", "\(port)"] + extra)
        let up = await eventually(timeout: .seconds(20)) { () -> Bool? in
            await ordinary(port: port, patch: false).status == 200 ? true : nil
        }
        try #require(up == true, "the bridge did not start: \(bridge.output)")
        return (bridge, port)
    }

    /// Open descriptors and resident memory (kB) of a process, from /proc.
    static func resources(_ pid: Int32) -> (descriptors: Int, rssKB: Int) {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        let rss = Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        return (descriptors, rss)
    }

    static func seconds(_ from: ContinuousClock.Instant, _ to: ContinuousClock.Instant?) -> Double {
        guard let to else { return .infinity }
        let (s, atto) = (to - from).components
        return Double(s) + Double(atto) / 1e18
    }

    /// The test opens a thousand connections and more: raise its soft descriptor limit (the
    /// bridge it starts inherits it) when the hard one allows.
    static func raiseDescriptorLimit(to wanted: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < rlim_t(wanted) else { return }
        limit.rlim_cur = min(limit.rlim_max, rlim_t(wanted))
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// One ordinary request on a new connection: its status and how long it took, connect included.
    static func ordinary(port: Int, patch: Bool) async -> (status: Int?, seconds: Double) {
        let started = ContinuousClock.now
        guard let connection = try? await RawConnection.connect(port: port) else { return (nil, seconds(started, .now)) }
        if patch {
            try? await connection.send(patchHead + "Content-Length: 2\r\n\r\n[]")
        } else {
            try? await connection.send("GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n")
        }
        let response = await connection.response(timeout: .seconds(5))
        let took = seconds(started, .now)
        await connection.close()
        return (response?.status, took)
    }

    /// What one round of hostile clients saw.
    struct Round {
        var silent: [RawConnection] = []
        var slowHeads: [RawConnection] = []
        var slowBodies: [RawConnection] = []
        var ordinary: [(status: Int?, seconds: Double)] = []
    }

    /// Opens `silent` connections that send nothing, `slowHeads` that send part of a head and then
    /// a field every 250 ms, and `slowBodies` chunked PATCH bodies of a byte every 200 ms; sends an
    /// ordinary request every 100 ms meanwhile; returns once all the hostile ones are closed, or
    /// after 15 s.
    static func hostileRound(port: Int, silent: Int, slowHeads: Int, slowBodies: Int) async throws -> Round {
        var round = Round()
        let ordinaryTask = Task {
            var results: [(status: Int?, seconds: Double)] = []
            for request in 0..<150 where !Task.isCancelled {
                results.append(await ordinary(port: port, patch: request % 2 == 1))
                try? await Task.sleep(for: .milliseconds(100))
            }
            return results
        }
        for index in 0..<max(silent, slowHeads) {
            if index < silent { round.silent.append(try await RawConnection.connect(port: port)) }
            if index < slowHeads {
                // Sent from the event loop as the connection opens: when the test's task runs next
                // does not matter.
                round.slowHeads.append(try await RawConnection.connect(port: port, sending: "GET /health/live HTTP/1.1\r\nHost: test\r\n"))
            }
        }
        for _ in 0..<slowBodies {
            round.slowBodies.append(try await RawConnection.connect(port: port, sending: patchHead + "Transfer-Encoding: chunked\r\n\r\n"))
        }
        let deadline = ContinuousClock.now + .seconds(15)
        var tick = 0
        while ContinuousClock.now < deadline {
            let open =
                round.silent.filter { !$0.isClosed }.count + round.slowHeads.filter { !$0.isClosed }.count
                + round.slowBodies.filter { !$0.isClosed }.count
            if open == 0 { break }
            if tick % 5 == 0 {
                for connection in round.slowHeads where !connection.isClosed { try? await connection.send("X-Slow: 1\r\n") }
            }
            for body in round.slowBodies where !body.isClosed { try? await body.send("1\r\n \r\n") }
            tick += 1
            try await Task.sleep(for: .milliseconds(50))
        }
        // A few more ordinary requests once the hostile ones are gone, then stop.
        try await Task.sleep(for: .milliseconds(500))
        ordinaryTask.cancel()
        round.ordinary = await ordinaryTask.value
        for connection in round.silent + round.slowHeads + round.slowBodies { await connection.close() }
        return round
    }

    @Test(
        "with 500 silent and 500 slow-head connections and 20 trickling bodies open, ordinary requests are answered within a second; the hostile ones are closed within their timeouts; descriptors and memory come back"
    )
    func slowAndSilentClients() async throws {
        Self.raiseDescriptorLimit(to: 8192)
        try await TestSpace.with { space in
            _ = try await space.putTask("t1")
            let (bridge, port) = try await Self.serve(space, Self.shortTimeouts + ["--http-max-connections", "1500"])
            let pid = bridge.process.processIdentifier
            let initial = Self.resources(pid)
            // A first round takes the allocator to its high-water mark; the baseline is taken after
            // it, so that what the second round leaves behind shows.
            _ = try await Self.hostileRound(port: port, silent: 500, slowHeads: 500, slowBodies: 20)
            let settled = await Self.settledResources(pid)
            let round = try await Self.hostileRound(port: port, silent: 500, slowHeads: 500, slowBodies: 20)

            let latencies = round.ordinary.map(\.seconds)
            #expect(round.ordinary.count >= 20, "ordinary requests sent: \(round.ordinary.count)")
            #expect(round.ordinary.allSatisfy { $0.status == 200 }, "\(round.ordinary.map(\.status))")
            #expect((latencies.max() ?? 99) < 1.0, "slowest ordinary request: \(latencies.max() ?? 99) s")

            // The margins (2 s over the timeout) are for scripts/test, which runs every suite at once.
            for connection in round.silent {
                let after = Self.seconds(connection.openedAt, connection.closedAt)
                #expect(after >= 0.9 && after < 3.0, "a silent connection closed after \(after) s")
                #expect(connection.received.isEmpty)
            }
            for connection in round.slowHeads {
                let after = Self.seconds(connection.openedAt, connection.closedAt)
                #expect(after >= 0.9 && after < 3.0, "a slow head closed after \(after) s")
                #expect(RawResponse(parsing: connection.received)?.status == 408)
            }
            for body in round.slowBodies {
                // The body's clock starts when the bridge has the head, just after the connection opened.
                let after = Self.seconds(body.openedAt, body.closedAt)
                #expect(after >= 1.9 && after < 4.0, "a slow body closed after \(after) s")
                #expect(RawResponse(parsing: body.received)?.status == 408)
            }

            var after = await Self.settledResources(pid)
            #expect(after.descriptors <= settled.descriptors + 2, "descriptors: \(settled.descriptors) before, \(after.descriptors) after")
            // A leak grows with every round (about 10 MB for these 1,020 connections); the
            // allocator's noise on a loaded machine does not. Over the margin, a third round tells.
            if after.rssKB > settled.rssKB + settled.rssKB / 10 + 4096 {
                _ = try await Self.hostileRound(port: port, silent: 500, slowHeads: 500, slowBodies: 20)
                let third = await Self.settledResources(pid)
                #expect(third.rssKB <= after.rssKB + 4096, "RSS: \(settled.rssKB) kB, then \(after.rssKB) kB, then \(third.rssKB) kB")
                after = third
            }
            print(
                "HTTP edge round: \(round.ordinary.count) ordinary requests, slowest \(Int((latencies.max() ?? 0) * 1000)) ms; "
                    + "descriptors \(initial.descriptors) at start, \(settled.descriptors) → \(after.descriptors); "
                    + "RSS \(initial.rssKB) kB at start, \(settled.rssKB) → \(after.rssKB) kB"
            )

            let metrics = await Self.ordinaryText(port: port, "/metrics")
            #expect(Self.value(#"taskstatus_http_timeouts_total{reason="header"}"#, in: metrics) >= 2000, "\(metrics)")
            #expect(Self.value(#"taskstatus_http_timeouts_total{reason="body"}"#, in: metrics) >= 40)
            #expect(Self.value(#"taskstatus_http_refused_total{status="408"}"#, in: metrics) >= 1040)
            bridge.kill(SIGTERM)
            #expect(await bridge.waitForExit() == 0, "\(bridge.output)")
        }
    }

    @Test("past --http-max-connections a new connection is closed at once, unanswered; the counts show on /metrics")
    func connectionCap() async throws {
        try await TestSpace.with { space in
            let (bridge, port) = try await Self.serve(space, ["--http-max-connections", "20", "--http-idle-timeout", "60"])
            var held: [RawConnection] = []
            for _ in 0..<20 {
                // Answered, so counted: connections are set up on several event loops, in no set order.
                let connection = try await RawConnection.connect(port: port)
                try await connection.send("GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n")
                #expect(await connection.response()?.status == 200)
                held.append(connection)
            }
            for _ in 0..<3 {
                let refused = try await RawConnection.connect(port: port)
                #expect(await refused.waitForClose(timeout: .milliseconds(500)))
                #expect(refused.received.isEmpty)
            }
            #expect(!held.contains { $0.isClosed })
            for connection in held.prefix(5) { await connection.close() }
            let metrics = await eventually(timeout: .seconds(5)) { () -> String? in
                let text = await Self.ordinaryText(port: port, "/metrics")
                return text.isEmpty ? nil : text
            }
            #expect(Self.value("taskstatus_http_connections_refused_total", in: metrics ?? "") >= 3, "\(metrics ?? "")")
            #expect(Self.value("taskstatus_http_connections", in: metrics ?? "") >= 15)
            for connection in held { await connection.close() }
            bridge.kill(SIGTERM)
            #expect(await bridge.waitForExit() == 0, "\(bridge.output)")
        }
    }

    @Test("HTTPS: curl --cacert with the test's own CA reaches the API by name and by address; plain HTTP and an unknown CA do not")
    func https() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        try await TestSpace.with { space in
            _ = try await space.putTask("t1")
            let port = PrivateRedis.freePort()
            let bridge = try BridgeProcess.serve(
                space,
                consumer: "tls",
                extra: ["--http-port", "\(port)", "--http-tls-cert-file", certificates.chainFile, "--http-tls-key-file", certificates.keyFile]
                    + Self.shortTimeouts
            )
            let ca = ["--cacert", certificates.caFile]
            let live = await eventually(timeout: .seconds(20)) { () -> String? in
                let result = await Self.curl(ca + ["https://localhost:\(port)/health/live"])
                return result.status == 0 ? result.output : nil
            }
            #expect(live?.hasSuffix("200") == true, "\(bridge.output)")
            let patched = await Self.curl(
                ca + [
                    "-X", "PATCH", "-H", "Content-Type: application/json-patch+json", "--data",
                    #"[{"op":"replace","path":"/progress","value":"over TLS"}]"#, "https://127.0.0.1:\(port)/task-status/v1/t1",
                ]
            )
            #expect(patched.status == 0)
            #expect(patched.output.contains("over TLS") && patched.output.hasSuffix("200"), "\(patched.output)")
            // curl's own CA store does not know the test's root.
            #expect(await Self.curl(["https://localhost:\(port)/health/live"]).status == 60)
            #expect(!(await Self.curl(["http://127.0.0.1:\(port)/health/live"]).output.hasSuffix("200")))
            // The timeouts hold over TLS too (the unit tests time a slow head; here a silent socket).
            let silent = try await RawConnection.connect(port: port)
            #expect(await silent.waitForClose(timeout: .seconds(5)))
            let after = Self.seconds(silent.openedAt, silent.closedAt)
            #expect(after >= 0.9 && after < 3.0, "a silent connection closed after \(after) s")
            bridge.kill(SIGTERM)
            #expect(await bridge.waitForExit() == 0, "\(bridge.output)")
        }
    }

    @Test("a TLS file that cannot be used stops the start: a non-zero exit, a message naming the flag and the path")
    func badTLSFile() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let missing = certificates.folder.appendingPathComponent("missing.pem").path
        for (arguments, expected) in [
            (
                ["--http-tls-cert-file", missing, "--http-tls-key-file", certificates.keyFile],
                "invalid --http-tls-cert-file (environment TASKSTATUS_HTTP_TLS_CERT_FILE): cannot read \(missing)"
            ),
            (
                ["--http-tls-cert-file", certificates.chainFile, "--http-tls-key-file", certificates.chainFile],
                "invalid --http-tls-key-file (environment TASKSTATUS_HTTP_TLS_KEY_FILE): \(certificates.chainFile)"
            ),
            (
                ["--http-tls-cert-file", certificates.chainFile, "--http-tls-key-file", certificates.otherKeyFile],
                "does not go with --http-tls-cert-file \(certificates.chainFile)"
            ),
        ] {
            let bridge = try BridgeProcess(["serve", "--no-auth", "--http-port", "0"] + arguments, environment: ["REDIS_URL": TestRedis.url!])
            let status = await bridge.waitForExit()
            #expect(status != nil && status != 0)
            #expect(bridge.output.contains(expected), "\(bridge.output)")
        }
    }

    /// `curl -s -o - -w %{http_code}` with `arguments`, bounded to 5 s: its exit status and output.
    static func curl(_ arguments: [String]) async -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", "--max-time", "5", "-o", "-", "-w", "%{http_code}"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return (-1, "\(error)") }
        _ = await eventually(timeout: .seconds(10)) { process.isRunning ? nil : true }
        if process.isRunning { process.terminate() }
        let text = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        return (process.isRunning ? -1 : process.terminationStatus, text)
    }

    /// The body of a GET on a new connection, empty when it fails.
    static func ordinaryText(port: Int, _ path: String) async -> String {
        guard let connection = try? await RawConnection.connect(port: port) else { return "" }
        try? await connection.send("GET \(path) HTTP/1.1\r\nHost: test\r\n\r\n")
        let response = await connection.response(timeout: .seconds(5))
        await connection.close()
        return response?.text ?? ""
    }

    /// A sample's value in Prometheus text; 0 when absent.
    static func value(_ sample: String, in text: String) -> Double {
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }

    /// The process's descriptors and RSS once the descriptors have stopped moving (the lingering
    /// closes of the 408s take up to a second).
    static func settledResources(_ pid: Int32) async -> (descriptors: Int, rssKB: Int) {
        var last = resources(pid)
        for _ in 0..<40 {
            try? await Task.sleep(for: .milliseconds(250))
            let now = resources(pid)
            if now.descriptors == last.descriptors { return now }
            last = now
        }
        return last
    }
}
