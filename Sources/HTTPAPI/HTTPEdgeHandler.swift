//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import TaskStatus

/// The edge's second handler, on parsed request parts (after the HTTP parser, before
/// Hummingbird): it runs the connection's timeouts (``ConnectionTimeouts``), and answers by itself
/// what must not reach the application: a `Content-Length` over the body limit (413 before any of
/// the body is read), a head over the size limit (431), a request the parser refused (400, e.g.
/// `Content-Length` with `Transfer-Encoding`), a request too slow (408). Those answers carry
/// SailPoint's error envelope, as every other error of the API does, and end the connection.
final class HTTPEdgeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The application's body read fails with this when the body timeout passes, so that a
    /// handler never takes a cut-off body for a whole one.
    struct BodyTimeout: Error {}

    /// How long a connection that has answered and half-closed waits for the peer to close, reading
    /// and dropping what it still sends: closing at once with unread bytes would reset the
    /// connection, and the peer could lose the answer (Go waits 500 ms for the same reason).
    static let linger = TimeAmount.seconds(1)

    private let settings: HTTPEdge.Settings
    private let metrics: HTTPEdgeMetrics
    private let logger: Logger
    private var timeouts: ConnectionTimeouts
    private var timer: (deadline: ContinuousClock.Instant, task: Scheduled<Void>)?
    private var lingering: Scheduled<Void>?
    /// Set once the edge has taken the connection over: the application's writes are dropped.
    private var closing = false
    /// A refusal that waits for the answers owed before it (a pipelined request).
    private var pendingRefusal: (status: HTTPResponse.Status, cause: String)?

    init(settings: HTTPEdge.Settings, metrics: HTTPEdgeMetrics, logger: Logger) {
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        self.timeouts = ConnectionTimeouts(limits: settings.timeouts, acceptedAt: .now)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        rearm(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.task.cancel()
        timer = nil
        lingering?.cancel()
        lingering = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.task.cancel()
        timer = nil
        lingering?.cancel()
        lingering = nil
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing, pendingRefusal == nil else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            context.triggerUserOutboundEvent(RequestHeadLimiter.Command.headComplete, promise: nil)
            if let length = head.headerFields[.contentLength].flatMap({ Int($0) }), length > settings.maxBodyBytes {
                refuse(context, .contentTooLarge, "the body (Content-Length \(length)) is over the limit of \(settings.maxBodyBytes) bytes")
                return
            }
            timeouts.headReceived(now: .now)
            rearm(context)
        case .body:
            break
        case .end:
            context.triggerUserOutboundEvent(RequestHeadLimiter.Command.requestComplete, promise: nil)
            timeouts.requestEnded(now: .now)
            rearm(context)
        }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is RequestHeadLimiter.HeadBytesArrived {
            timeouts.bytesReceived(now: .now)
            rearm(context)
            return
        }
        if closing, event as? ChannelEvent == .some(.inputClosed) {
            // The peer has read the answer and closed its side: nothing is left to linger for.
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let status: HTTPResponse.Status
        let cause: String
        switch error {
        case let error as RequestHeadLimiter.HeadTooLarge:
            (status, cause) = (.requestHeaderFieldsTooLarge, "the request head is over the limit of \(error.limit) bytes")
        case HTTPParserError.headerOverflow:
            (status, cause) = (.requestHeaderFieldsTooLarge, "the request head is over the limit of \(settings.maxHeadBytes) bytes")
        case let error as HTTPParserError:
            (status, cause) = (.badRequest, Self.cause(of: error))
        default:
            context.fireErrorCaught(error)
            return
        }
        guard !closing else { return }
        if case .body = timeouts.inbound {
            // The application is reading this request's body: its read must fail, not end early.
            context.fireErrorCaught(error)
            if timeouts.owed == 1, !timeouts.responding {
                respondAndClose(context, status, cause)
            } else {
                closeNow(context)
            }
            return
        }
        refuse(context, status, cause)
    }

    /// What the parser's error means, for the answer's `causes`. llhttp refuses `Content-Length`
    /// with `Transfer-Encoding` (a request-smuggling vector) as `invalidContentLength` or as an
    /// invalid transfer encoding (NIO's `unknown`), depending on which comes first.
    static func cause(of error: HTTPParserError) -> String {
        switch error {
        case .unknown, .unexpectedContentLength, .invalidContentLength:
            return
                "the request's body framing is not valid HTTP/1.1: Content-Length and Transfer-Encoding together, a Content-Length repeated or not a number, or a transfer coding other than chunked"
        case .invalidChunkSize: return "a chunk size of the body is not valid"
        case .invalidEOFState: return "the connection ended inside the request"
        default: return "the request is not valid HTTP/1.1 (\(error))"
        }
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !closing else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(var head):
            if timeouts.responseStarted(now: .now) {
                // Answered before its body arrived (a refusal): the rest of the body is not read,
                // so the connection cannot carry another request.
                head.headerFields[.connection] = "close"
                context.write(wrapOutboundOut(.head(head)), promise: promise)
            } else {
                context.write(data, promise: promise)
            }
        case .body:
            context.write(data, promise: promise)
        case .end:
            let unread = timeouts.responseEnded(now: .now)
            context.write(data, promise: promise)
            if unread {
                closeAfterFlush(context)
            } else if let refusal = pendingRefusal, timeouts.owed == 0 {
                pendingRefusal = nil
                respondAndClose(context, refusal.status, refusal.cause)
            } else {
                rearm(context)
            }
        }
    }

    // MARK: Timeouts

    /// Arms the timer for the current deadline. A timer armed for an earlier deadline is kept,
    /// not cancelled: when it fires it finds the state moved on and arms the next one. So a busy
    /// keep-alive connection schedules about one task per body timeout, not two per request.
    private func rearm(_ context: ChannelHandlerContext) {
        guard !closing, let (deadline, _) = timeouts.deadline else { return }
        if let timer, timer.deadline <= deadline { return }
        timer?.task.cancel()
        let task = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: TimeAmount(deadline - .now)) { [self] in
            timer = nil
            expire(context)
        }
        timer = (deadline, task)
    }

    private func expire(_ context: ChannelHandlerContext) {
        switch timeouts.expired(now: .now) {
        case .none:
            rearm(context)
        case .close(let reason):
            record(reason, context)
            closeNow(context)
        case .requestTimeout(let reason):
            record(reason, context)
            if reason == .body { context.fireErrorCaught(BodyTimeout()) }
            respondAndClose(context, .requestTimeout, "the request did not arrive within the \(reason.rawValue) timeout")
        }
    }

    private func record(_ reason: ConnectionTimeouts.Reason, _ context: ChannelHandlerContext) {
        metrics.timedOut(reason)
        logger.debug(
            "HTTP connection timed out",
            metadata: ["http.timeout": "\(reason.rawValue)", "http.peer": "\(context.remoteAddress?.description ?? "?")"]
        )
    }

    // MARK: Answers of the edge

    /// Answers `status` now, or once the answers owed before it are written.
    private func refuse(_ context: ChannelHandlerContext, _ status: HTTPResponse.Status, _ cause: String) {
        context.triggerUserOutboundEvent(RequestHeadLimiter.Command.discardInput, promise: nil)
        if timeouts.owed == 0 {
            respondAndClose(context, status, cause)
        } else {
            pendingRefusal = (status, cause)
            timer?.task.cancel()
            timer = nil
        }
    }

    /// Writes `status` with SailPoint's envelope and `Connection: close`, half-closes, and closes
    /// once the peer has closed too, or after ``linger``.
    private func respondAndClose(_ context: ChannelHandlerContext, _ status: HTTPResponse.Status, _ cause: String) {
        metrics.refused(status.code)
        logger.debug(
            "HTTP request refused by the edge",
            metadata: ["http.status": "\(status.code)", "http.cause": "\(cause)", "http.peer": "\(context.remoteAddress?.description ?? "?")"]
        )
        closing = true
        timer?.task.cancel()
        timer = nil
        context.triggerUserOutboundEvent(RequestHeadLimiter.Command.discardInput, promise: nil)
        let body = ByteBuffer(bytes: ErrorEnvelope.body(status: status.code, cause: cause))
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(body.readableBytes)
        fields[.connection] = "close"
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        halfCloseAndLinger(context)
    }

    /// Lets the response written last go out, then half-closes and lingers (see ``linger``).
    private func closeAfterFlush(_ context: ChannelHandlerContext) {
        closing = true
        timer?.task.cancel()
        timer = nil
        context.triggerUserOutboundEvent(RequestHeadLimiter.Command.discardInput, promise: nil)
        context.flush()
        halfCloseAndLinger(context)
    }

    private func halfCloseAndLinger(_ context: ChannelHandlerContext) {
        let loopBound = context.loopBound
        let promise = context.eventLoop.makePromise(of: Void.self)
        // Sent once the answer is out; a channel that cannot half-close closes instead.
        promise.futureResult.whenFailure { _ in loopBound.value.close(promise: nil) }
        context.close(mode: .output, promise: promise)
        lingering = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: Self.linger) {
            loopBound.value.close(promise: nil)
        }
    }

    private func closeNow(_ context: ChannelHandlerContext) {
        closing = true
        timer?.task.cancel()
        timer = nil
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HTTPEdgeHandler: Sendable {}
