//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import Hummingbird
import JSONPatch
import Logging
import NIOCore
import NIOSSL
import Synchronization
import TestFixtures
import Testing

@testable import HTTPAPI

/// The edge in front of a server of test routes (no Redis): raw connections that are silent, slow,
/// too large or malformed, and routes that take long or stream. Each test makes short (a second
/// or so) only the timeouts it is about, and leaves the others at 30 s, so that a slow machine
/// (scripts/test runs every suite at once) cannot make another timeout decide; the bounds on when
/// a connection closes leave a second or more of margin.
@Suite("HTTP edge: timeouts, limits and refusals, against test routes", .timeLimit(.minutes(2)))
struct EdgeServerTests {
    static func configuration(header: Duration = .seconds(30), body: Duration = .seconds(30), idle: Duration = .seconds(30)) -> HTTPConfiguration {
        HTTPConfiguration(host: "127.0.0.1", port: 0, headerTimeout: header, bodyTimeout: body, idleTimeout: idle, maxConnections: 100)
    }
    static let maxBodyBytes = 1024

    /// Runs a server of the test routes behind the edge for the length of `body`, given its port.
    static func withServer(_ configuration: HTTPConfiguration = configuration(), _ body: (Int) async throws -> Void) async throws {
        let router = Router()
        router.get("fast") { _, _ in "ok" }
        router.get("slow") { _, _ in
            try await Task.sleep(for: .milliseconds(2500))
            return "slow"
        }
        // Server-sent events for longer than every timeout.
        router.get("stream") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/event-stream"],
                body: ResponseBody { writer in
                    for event in 0..<12 {
                        try await writer.write(ByteBuffer(string: "data: \(event)\n\n"))
                        try await Task.sleep(for: .milliseconds(300))
                    }
                    try await writer.finish(nil)
                }
            )
        }
        router.patch("echo") { request, _ in
            let body = try await request.body.collect(upTo: maxBodyBytes)
            return "\(body.readableBytes)"
        }
        var logger = Logger(label: "edge-test")
        logger.logLevel = .critical
        let port = Mutex<Int?>(nil)
        let app = Application(
            router: router,
            server: HTTPEdge.server(configuration: configuration, maxBodyBytes: maxBodyBytes, logger: logger),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } },
            logger: logger
        )
        let server = Task { try await app.runService() }
        do {
            var bound: Int?
            for _ in 0..<250 where bound == nil {
                bound = port.withLock { $0 }
                if bound == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            try await body(try #require(bound, "the server did not start"))
        } catch {
            server.cancel()
            _ = try? await server.value
            throw error
        }
        server.cancel()
        _ = try? await server.value
    }

    static func seconds(_ from: ContinuousClock.Instant, _ to: ContinuousClock.Instant?) -> Double {
        guard let to else { return .infinity }
        let (s, atto) = (to - from).components
        return Double(s) + Double(atto) / 1e18
    }

    /// The error envelope's `detailCode`.
    static func detail(_ response: RawResponse?) -> String? {
        guard let response, let json = try? JSONValue(parsing: response.body) else { return nil }
        return json["detailCode"]?.stringValue
    }

    @Test("a silent connection is closed without a word at the header timeout, counted from the accept")
    func silent() async throws {
        try await Self.withServer(Self.configuration(header: .seconds(1))) { port in
            let connection = try await RawConnection.connect(port: port)
            #expect(await connection.waitForClose(timeout: .seconds(5)))
            let after = Self.seconds(connection.openedAt, connection.closedAt)
            #expect(after >= 0.9 && after < 2.5, "closed after \(after) s")
            #expect(connection.received.isEmpty)
        }
    }

    @Test("a head trickling in gets 408 at the header timeout: its bytes do not reset the clock")
    func slowHead() async throws {
        try await Self.withServer(Self.configuration(header: .seconds(1))) { port in
            let connection = try await RawConnection.connect(port: port, sending: "GET /fast HTTP/1.1\r\nHost: test\r\n")
            for _ in 0..<25 where !connection.isClosed {
                try? await connection.send("X-Slow: 1\r\n")
                try await Task.sleep(for: .milliseconds(200))
            }
            let response = await connection.response()
            #expect(response?.status == 408)
            #expect(Self.detail(response) == "408 Request Timeout")
            #expect(response?.headers["connection"] == "close")
            #expect(await connection.waitForClose(timeout: .seconds(3)))
            let after = Self.seconds(connection.openedAt, connection.closedAt)
            #expect(after >= 0.9 && after < 2.5, "closed after \(after) s")
        }
    }

    @Test("a body trickling in gets 408 at the body timeout, a total, though no gap between reads is long")
    func slowBody() async throws {
        try await Self.withServer(Self.configuration(body: .milliseconds(1500))) { port in
            let connection = try await RawConnection.connect(
                port: port,
                sending: "PATCH /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            for _ in 0..<40 where !connection.isClosed {
                try? await connection.send("1\r\na\r\n")
                try await Task.sleep(for: .milliseconds(200))
            }
            let response = await connection.response()
            #expect(response?.status == 408)
            #expect(Self.detail(response) == "408 Request Timeout")
            #expect(await connection.waitForClose(timeout: .seconds(3)))
            // The clock starts when the server has the head, after the connection opened.
            let after = Self.seconds(connection.openedAt, connection.closedAt)
            #expect(after >= 1.4 && after < 3.0, "closed after \(after) s")
        }
    }

    @Test("keep-alive: the idle timeout between requests, then the header timeout from the next request's first byte")
    func keepAlive() async throws {
        try await Self.withServer(Self.configuration(header: .seconds(1), idle: .seconds(4))) { port in
            let connection = try await RawConnection.connect(port: port, sending: "GET /fast HTTP/1.1\r\nHost: test\r\n\r\n")
            let first = try #require(await connection.response())
            #expect(first.status == 200)
            // Longer than the header timeout, well within the idle one.
            try await Task.sleep(for: .milliseconds(1500))
            #expect(!connection.isClosed)
            try await connection.send("GET /fast HTTP/1.1\r\nHost: test\r\n\r\n")
            let second = try #require(await connection.response(skip: first.length))
            #expect(second.status == 200)
            let answered = ContinuousClock.now
            // Part of a third head 2.5 s later: its header timeout runs from its first byte and
            // ends in a 408. Had the header timeout run from the answer, the connection would be
            // closed by now; had the idle one gone on, it would close at 4 s without a word.
            try await Task.sleep(for: .milliseconds(2500))
            #expect(!connection.isClosed)
            try await connection.send("GET /fast HTTP/1.1\r\n")
            let third = await connection.response(timeout: .seconds(5), skip: first.length + second.length)
            #expect(third?.status == 408)
            #expect(await connection.waitForClose(timeout: .seconds(5)))
            let after = Self.seconds(answered, connection.closedAt)
            #expect(after >= 3.5 && after < 6.0, "closed after \(after) s")

            let idle = try await RawConnection.connect(port: port, sending: "GET /fast HTTP/1.1\r\nHost: test\r\n\r\n")
            let answer = await idle.response()
            #expect(answer?.status == 200)
            let done = ContinuousClock.now
            #expect(await idle.waitForClose(timeout: .seconds(8)))
            let idleAfter = Self.seconds(done, idle.closedAt)
            #expect(idleAfter >= 3.0 && idleAfter < 5.5, "closed after \(idleAfter) s")
            #expect(idle.received.count == answer?.length, "a connection closed for idleness gets no answer")
        }
    }

    @Test("a handler slower than every timeout is waited for, and a streamed response outlives them all")
    func longAnswers() async throws {
        try await Self.withServer(Self.configuration(header: .seconds(1), body: .seconds(1), idle: .seconds(1))) { port in
            let slow = try await RawConnection.connect(port: port)
            try await slow.send("GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
            let answer = await slow.response(timeout: .seconds(6))
            #expect(answer?.status == 200)
            #expect(answer?.text == "slow")

            let stream = try await RawConnection.connect(port: port)
            try await stream.send("GET /stream HTTP/1.1\r\nHost: test\r\n\r\n")
            let started = ContinuousClock.now
            let deadline = started + .seconds(10)
            while !String(decoding: stream.received, as: UTF8.self).hasSuffix("0\r\n\r\n"), !stream.isClosed, .now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            let text = String(decoding: stream.received, as: UTF8.self)
            #expect(text.contains("data: 11"), "\(text)")
            #expect(text.hasSuffix("0\r\n\r\n"))
            #expect(Self.seconds(started, .now) > 3, "the stream lasts 3.6 s, longer than every timeout")
            await stream.close()
        }
    }

    @Test("a Content-Length over the limit is answered 413 at once, before any of the body")
    func contentTooLarge() async throws {
        try await Self.withServer { port in
            let connection = try await RawConnection.connect(port: port)
            try await connection.send("PATCH /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000000000\r\n\r\n")
            // No byte of the body is sent: an answer at all is an answer before the body.
            let response = await connection.response(timeout: .seconds(5))
            #expect(response?.status == 413)
            #expect(Self.detail(response) == "413 Payload Too Large")
            #expect(response?.headers["connection"] == "close")
            #expect(await connection.waitForClose(timeout: .seconds(2)))
        }
    }

    @Test("a chunked body over the limit: 413, and the connection closes rather than read the rest")
    func chunkedTooLarge() async throws {
        try await Self.withServer { port in
            let connection = try await RawConnection.connect(port: port)
            try await connection.send("PATCH /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
            try await connection.send("800\r\n" + String(repeating: "a", count: 2048) + "\r\n")
            let response = await connection.response(timeout: .seconds(2))
            #expect(response?.status == 413)
            #expect(response?.headers["connection"] == "close")
            #expect(await connection.waitForClose(timeout: .seconds(2)))
        }
    }

    @Test(
        "a request head over 16 KiB is answered 431, however it comes",
        arguments: [
            ("one large field", ["GET /fast HTTP/1.1\r\nHost: test\r\nX-Large: " + String(repeating: "a", count: 17 * 1024) + "\r\n\r\n"]),
            ("a long URL", ["GET /fast?" + String(repeating: "q", count: 17 * 1024) + " HTTP/1.1\r\nHost: test\r\n\r\n"]),
            (
                "many fields, a piece at a time",
                ["GET /fast HTTP/1.1\r\nHost: test\r\n"] + (0..<20).map { "X-Field-\($0): " + String(repeating: "b", count: 1000) + "\r\n" }
            ),
            (
                "whitespace the parser skips",
                ["GET /fast HTTP/1.1\r\nHost: test\r\nX-Pad:"] + Array(repeating: String(repeating: " ", count: 1024), count: 20)
            ),
        ]
    )
    func headTooLarge(_ name: String, pieces: [String]) async throws {
        try await Self.withServer { port in
            let connection = try await RawConnection.connect(port: port)
            for piece in pieces where !connection.isClosed {
                try? await connection.send(piece)
                try await Task.sleep(for: .milliseconds(5))
            }
            let response = await connection.response(timeout: .seconds(2))
            #expect(response?.status == 431, "\(name)")
            #expect(Self.detail(response) == "431 Request Header Fields Too Large", "\(name)")
            #expect(await connection.waitForClose(timeout: .seconds(2)), "\(name)")
        }
    }

    @Test("a head just under 16 KiB is served")
    func headUnderLimit() async throws {
        try await Self.withServer { port in
            let connection = try await RawConnection.connect(port: port)
            try await connection.send("GET /fast HTTP/1.1\r\nHost: test\r\nX-Large: " + String(repeating: "a", count: 15 * 1024) + "\r\n\r\n")
            #expect(await connection.response()?.status == 200)
        }
    }

    @Test(
        "Content-Length together with Transfer-Encoding is answered 400 with the envelope",
        arguments: [
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        ]
    )
    func smuggling(fields: String) async throws {
        try await Self.withServer { port in
            let connection = try await RawConnection.connect(port: port)
            try await connection.send("PATCH /echo HTTP/1.1\r\nHost: test\r\n\(fields)\r\n0\r\n\r\n")
            let response = await connection.response()
            #expect(response?.status == 400)
            #expect(Self.detail(response) == "400.1 Bad Request Content")
            #expect(response?.text.contains("Content-Length and Transfer-Encoding together") == true)
            #expect(await connection.waitForClose(timeout: .seconds(2)))
        }
    }

    @Test("past the cap a new connection is closed at once, unanswered; below it again, connections are served")
    func connectionCap() async throws {
        // The timeouts far away (30 s), so that only the cap can close the connection refused.
        var configuration = Self.configuration()
        configuration.maxConnections = 3
        try await Self.withServer(configuration) { port in
            var held: [RawConnection] = []
            for _ in 0..<3 {
                // Answered, so counted: connections are set up on several event loops, in no set order.
                let connection = try await RawConnection.connect(port: port)
                try await connection.send("GET /fast HTTP/1.1\r\nHost: test\r\n\r\n")
                #expect(await connection.response()?.status == 200)
                held.append(connection)
            }
            let refused = try await RawConnection.connect(port: port)
            #expect(await refused.waitForClose(timeout: .milliseconds(500)))
            #expect(refused.received.isEmpty)
            #expect(!held.contains { $0.isClosed })
            await held[0].close()
            var served = false
            for _ in 0..<50 where !served {
                let connection = try await RawConnection.connect(port: port)
                try? await connection.send("GET /fast HTTP/1.1\r\nHost: test\r\n\r\n")
                served = await connection.response(timeout: .milliseconds(500))?.status == 200
                await connection.close()
            }
            #expect(served)
            for connection in held { await connection.close() }
        }
    }

    @Test("over TLS the same timeouts hold: a stalled handshake is closed, a slow head gets 408", .enabled(if: TestCertificates.isAvailable))
    func tls() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        var configuration = Self.configuration(header: .seconds(1))
        configuration.tls = try HTTPTLSConfiguration(
            certificateChainPEM: Array(try Data(contentsOf: URL(fileURLWithPath: certificates.chainFile))),
            privateKeyPEM: Array(try Data(contentsOf: URL(fileURLWithPath: certificates.keyFile)))
        )
        var client = TLSConfiguration.makeClientConfiguration()
        client.trustRoots = .file(certificates.caFile)
        try await Self.withServer(configuration) { port in
            let served = try await RawConnection.connect(port: port, tls: client, serverHostname: "localhost")
            try await served.send("GET /fast HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(await served.response()?.status == 200)

            // No handshake at all: a plain TCP connection that says nothing.
            let stalled = try await RawConnection.connect(port: port)
            #expect(await stalled.waitForClose(timeout: .seconds(4)))
            let after = Self.seconds(stalled.openedAt, stalled.closedAt)
            #expect(after >= 0.9 && after < 2.5, "closed after \(after) s")

            let slow = try await RawConnection.connect(port: port, tls: client, serverHostname: "localhost", sending: "GET /fast HTTP/1.1\r\n")
            let response = await slow.response(timeout: .seconds(4))
            #expect(response?.status == 408)
            #expect(await slow.waitForClose(timeout: .seconds(3)))
        }
    }

    @Test(
        "a key that is not the certificate's, or files that are not PEM, are refused with the file at fault",
        .enabled(if: TestCertificates.isAvailable)
    )
    func badTLSFiles() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let chain = Array(try Data(contentsOf: URL(fileURLWithPath: certificates.chainFile)))
        let key = Array(try Data(contentsOf: URL(fileURLWithPath: certificates.keyFile)))
        let otherKey = Array(try Data(contentsOf: URL(fileURLWithPath: certificates.otherKeyFile)))
        _ = try HTTPTLSConfiguration(certificateChainPEM: chain, privateKeyPEM: key)
        func code(_ chain: [UInt8], _ key: [UInt8]) -> HTTPTLSError.Code? {
            do throws(HTTPTLSError) {
                _ = try HTTPTLSConfiguration(certificateChainPEM: chain, privateKeyPEM: key)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(code(chain, otherKey) == .mismatch)
        #expect(code(Array("not a certificate".utf8), key) == .certificate)
        #expect(code(key, key) == .certificate)
        #expect(code(chain, chain) == .privateKey)
    }
}
