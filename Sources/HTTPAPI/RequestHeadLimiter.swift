//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import NIOCore

/// The edge's first handler, on the connection's plain bytes (after TLS, before the HTTP parser):
/// it tells ``HTTPEdgeHandler`` when the bytes of a new request begin (the header clock of a
/// keep-alive connection starts then), counts a head's bytes against the limit, and drops what
/// arrives once the edge has answered and is closing.
///
/// NIO's parser has limits of its own (set as tight: see ``HTTPEdge``), but they count the URL and
/// the fields, not the request line's other bytes or whitespace; this count takes every byte.
final class RequestHeadLimiter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Sent inbound when the first bytes of a request head arrive.
    struct HeadBytesArrived {}

    /// Sent inbound when a head outgrows the limit; the edge answers 431.
    struct HeadTooLarge: Error {
        let limit: Int
    }

    /// What ``HTTPEdgeHandler`` tells this handler, as outbound user events.
    enum Command {
        /// A head was parsed: the bytes that follow are its body.
        case headComplete
        /// A request ended: the bytes that follow begin the next head.
        case requestComplete
        /// The edge has answered and closes: drop every byte from now on.
        case discardInput
    }

    private enum State {
        /// Counting the bytes of a head; 0 before the first one.
        case head(bytes: Int)
        case body
        case discarding
    }

    private let limit: Int
    private var state = State.head(bytes: 0)

    init(limit: Int) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let before) = state else {
            if case .body = state { context.fireChannelRead(data) }
            return
        }
        let count = unwrapInboundIn(data).readableBytes
        if before == 0, count > 0 { context.fireUserInboundEventTriggered(HeadBytesArrived()) }
        state = .head(bytes: before + count)
        context.fireChannelRead(data)
        // The parser may have finished the head within this read (then the state moved on, and
        // the read's bytes past the head were body). Only a head still unfinished is too large.
        if case .head(let total) = state, total > limit {
            state = .discarding
            context.fireErrorCaught(HeadTooLarge(limit: limit))
        }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let command = event as? Command else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch (command, state) {
        case (_, .discarding): break
        case (.headComplete, _): state = .body
        case (.requestComplete, _): state = .head(bytes: 0)
        case (.discardInput, _): state = .discarding
        }
        promise?.succeed()
    }
}

@available(*, unavailable)
extension RequestHeadLimiter: Sendable {}
