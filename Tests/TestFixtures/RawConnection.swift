//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import NIOCore
import NIOPosix
public import NIOSSL
import Synchronization

/// A TCP (or TLS) connection that sends exactly the bytes a test gives it, as slowly as the test
/// likes, and records what comes back and when the server closed: for the clients an HTTP library
/// will not be, the slow, the silent and the malformed. Loopback only.
public final class RawConnection: Sendable {
    private let channel: any Channel
    private let collector: Collector
    /// When the connection was opened.
    public let openedAt: ContinuousClock.Instant

    private init(channel: any Channel, collector: Collector, openedAt: ContinuousClock.Instant) {
        self.channel = channel
        self.collector = collector
        self.openedAt = openedAt
    }

    /// Connects to `port` on 127.0.0.1; over TLS when `tls` is given (`serverHostname` checked
    /// against the certificate). `first` is sent as soon as the connection is up, from the event
    /// loop: a test's timing then does not depend on when its task runs next.
    public static func connect(
        port: Int,
        tls: TLSConfiguration? = nil,
        serverHostname: String? = nil,
        sending first: String? = nil,
        timeout: Duration = .seconds(5)
    ) async throws -> RawConnection {
        let collector = Collector()
        let first = first.map { Array($0.utf8) }
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
        let openedAt = ContinuousClock.now
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(TimeAmount(timeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname)
                        )
                    }
                    try channel.pipeline.syncOperations.addHandler(CollectingHandler(collector, first: first))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return RawConnection(channel: channel, collector: collector, openedAt: openedAt)
    }

    /// Sends `bytes`; fails once the server has closed.
    public func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    public func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    /// Everything received so far.
    public var received: [UInt8] { collector.state.withLock { $0.bytes } }

    /// When the server closed (or the connection failed); `nil` while it is open.
    public var closedAt: ContinuousClock.Instant? { collector.state.withLock { $0.closedAt } }

    public var isClosed: Bool { closedAt != nil }

    /// Waits (polling, bounded) until the server has closed; whether it did within `timeout`.
    @discardableResult
    public func waitForClose(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !isClosed, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return isClosed
    }

    /// Waits (bounded) for one whole response (with `Content-Length`) after the first `skip` bytes.
    public func response(timeout: Duration = .seconds(5), skip: Int = 0) async -> RawResponse? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let bytes = received
            if bytes.count > skip, let response = RawResponse(parsing: Array(bytes[skip...])) { return response }
            if isClosed { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    /// Closes the connection (waits until it is closed).
    public func close() async {
        try? await channel.close()
    }

    private final class Collector: Sendable {
        struct State {
            var bytes: [UInt8] = []
            var closedAt: ContinuousClock.Instant?
        }
        let state = Mutex(State())
    }

    private final class CollectingHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let collector: Collector
        let first: [UInt8]?

        init(_ collector: Collector, first: [UInt8]?) {
            self.collector = collector
            self.first = first
        }

        func channelActive(context: ChannelHandlerContext) {
            if let first { context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: first)), promise: nil) }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            collector.state.withLock { $0.bytes.append(contentsOf: buffer.readableBytesView) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            collector.state.withLock { if $0.closedAt == nil { $0.closedAt = .now } }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A reset or a TLS failure: the connection is over either way.
            context.close(promise: nil)
        }
    }
}

/// An HTTP/1.1 response as bytes came: status, fields (names lower-cased) and the body that
/// `Content-Length` announces.
public struct RawResponse: Sendable {
    public let status: Int
    public let headers: [String: String]
    public let body: [UInt8]
    /// Bytes the response took, head and body.
    public let length: Int

    public init?(parsing bytes: [UInt8]) {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else { return nil }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let bodyStart = end + 4
        guard bytes.count >= bodyStart + length else { return nil }
        self.status = status
        self.headers = headers
        self.body = Array(bytes[bodyStart..<bodyStart + length])
        self.length = bodyStart + length
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
}
