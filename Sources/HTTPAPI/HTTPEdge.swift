//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import HummingbirdCore
import HummingbirdTLS
import Logging
import Metrics
import NIOCore
import NIOSSL
import Synchronization

/// What stands between a socket and the routes: the cap on open connections, TLS, and on each
/// connection ``RequestHeadLimiter`` and ``HTTPEdgeHandler`` around Hummingbird's HTTP/1 channel.
///
/// A connection's pipeline, from the socket: (`NIOSSLServerHandler`), `RequestHeadLimiter`, NIO's
/// HTTP/1 parser and encoder, Hummingbird's part codec, `HTTPEdgeHandler`, Hummingbird's
/// connection state handler and the application.
enum HTTPEdge {
    /// The edge's limits, per connection.
    struct Settings: Sendable {
        var timeouts: ConnectionTimeouts.Limits
        /// A `Content-Length` over this is answered 413 before any of the body is read.
        var maxBodyBytes: Int
        /// A request head (request line and fields) over this is answered 431.
        var maxHeadBytes: Int
    }

    /// The server to give Hummingbird's `Application`.
    ///
    /// Hummingbird's own idle timeout is left off: it counts from the last request part read, so it
    /// can tell neither a slow head nor a trickling body from an idle connection, and it would
    /// run beside ours. Its connection state handler still does the graceful shutdown.
    static func server(configuration: HTTPConfiguration, maxBodyBytes: Int, logger: Logger) -> HTTPServerBuilder {
        let settings = Settings(
            timeouts: .init(header: configuration.headerTimeout, body: configuration.bodyTimeout, idle: configuration.idleTimeout),
            maxBodyBytes: maxBodyBytes,
            maxHeadBytes: configuration.maxHeadBytes
        )
        let metrics = HTTPEdgeMetrics()
        let tls = configuration.tls.map { TLSChannelConfiguration(tlsConfiguration: $0.server) }
        let limit = configuration.maxConnections
        return HTTPServerBuilder { responder in
            // NIO's parser refuses (`headerOverflow`, answered 431) a URL and fields over the limit
            // before it has buffered them; `RequestHeadLimiter` counts the rest of the head.
            let decoder = HTTP1Channel.Configuration.DecoderConfiguration(
                maxHeaderFieldSize: settings.maxHeadBytes,
                maxHeaderListSize: settings.maxHeadBytes,
                maxHeaderFieldCount: 1000
            )
            let http1 = HTTP1Channel(
                responder: responder,
                configuration: .init(
                    additionalChannelHandlers: [HTTPEdgeHandler(settings: settings, metrics: metrics, logger: logger)],
                    idleTimeout: nil,
                    httpDecoderConfiguration: decoder
                )
            )
            let edge = EdgeChannel(base: http1, maxHeadBytes: settings.maxHeadBytes)
            if let tls {
                return CappedChannel(base: try TLSChannel(edge, configuration: tls), limit: limit, metrics: metrics, logger: logger)
            }
            return CappedChannel(base: edge, limit: limit, metrics: metrics, logger: logger)
        }
    }
}

/// Hummingbird's HTTP/1 channel with ``RequestHeadLimiter`` before its parser.
struct EdgeChannel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value

    let base: HTTP1Channel
    let maxHeadBytes: Int

    var responder: HTTPChannelHandler.Responder { base.responder }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(RequestHeadLimiter(limit: maxHeadBytes))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        // The connection's requests run on its own event loop rather than on Swift's pool: a
        // request then goes from the loop to the `http-worker` and back, two hand-offs instead of
        // four (loop, pool, worker, pool, loop), each a thread woken.
        await withTaskExecutorPreference(EventLoopTaskExecutor(loop: value.channel.eventLoop)) {
            await base.handle(value: value, logger: logger)
        }
    }
}

/// An event loop as a task executor: jobs run on the loop's thread, in its task queue.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}

/// Refuses connections past the cap by closing them as they are accepted, before TLS or HTTP
/// costs anything; counts the others while they are open.
struct CappedChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base
    let limit: Int
    let metrics: HTTPEdgeMetrics
    let logger: Logger

    /// Why a connection was not set up; NIO drops the failure (the channel is closed here).
    struct OverCapacity: Error {}

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard metrics.connectionOpened(limit: limit) else {
            self.logger.debug("HTTP connection refused: at the cap", metadata: ["http.max_connections": "\(limit)"])
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(OverCapacity())
        }
        let metrics = metrics
        channel.closeFuture.whenComplete { _ in metrics.connectionClosed() }
        return base.setup(channel: channel, logger: logger).flatMapErrorThrowing { error in
            channel.close(promise: nil)
            throw error
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// The edge's counts: open connections (an atomic, which the cap reads, and a gauge), connections
/// refused at the cap, timeouts by kind, and the requests the edge answered by itself.
final class HTTPEdgeMetrics: Sendable {
    private let open = Atomic<Int>(0)
    private let openGauge = Meter(label: "taskstatus_http_connections")
    private let refusedConnections = Counter(label: "taskstatus_http_connections_refused_total")
    private let timeouts: [ConnectionTimeouts.Reason: Counter]
    private let refusals: [Int: Counter]

    init() {
        timeouts = Dictionary(
            uniqueKeysWithValues: ConnectionTimeouts.Reason.allCases.map {
                ($0, Counter(label: "taskstatus_http_timeouts_total", dimensions: [("reason", $0.rawValue)]))
            }
        )
        refusals = Dictionary(
            uniqueKeysWithValues: [400, 408, 413, 431].map {
                ($0, Counter(label: "taskstatus_http_refused_total", dimensions: [("status", String($0))]))
            }
        )
    }

    /// Counts a new connection, unless `limit` are open already.
    func connectionOpened(limit: Int) -> Bool {
        var current = open.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = open.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged {
                openGauge.increment()
                return true
            }
            current = original
        }
        refusedConnections.increment()
        return false
    }

    func connectionClosed() {
        open.subtract(1, ordering: .relaxed)
        openGauge.decrement()
    }

    /// Open connections now.
    var openConnections: Int { open.load(ordering: .relaxed) }

    func timedOut(_ reason: ConnectionTimeouts.Reason) {
        timeouts[reason]?.increment()
    }

    func refused(_ status: Int) {
        refusals[status]?.increment()
    }
}
