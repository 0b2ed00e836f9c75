//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import TaskStatus

/// SailPoint's task-status API: `PATCH` and `GET /task-status/{id}` (experimental: they need
/// `X-SailPoint-Experimental: true`) and `/task-status/v1/{id}` (the 2.x SDKs' form, no header
/// needed), at the root and under the prefixes SailPoint's SDKs put in their base URL. Every
/// request goes through the same engine, checks and atomic commit as the stream.
struct TaskStatusRoutes {
    static let prefixes = ["", "/beta", "/v2024", "/v2025", "/v2026"]

    let queue: UpdateQueue
    /// Live updates (`Accept: text/event-stream`); `nil`: the routes answer as without the header.
    let hub: ChangeFeedHub?
    let authenticator: Authenticator?
    let configuration: BridgeConfiguration
    let decoder: PatchRequestDecoder
    let duration: Metrics.Timer

    init(queue: UpdateQueue, hub: ChangeFeedHub? = nil, authenticator: Authenticator?, configuration: BridgeConfiguration) {
        self.queue = queue
        self.hub = hub
        self.authenticator = authenticator
        self.configuration = configuration
        self.decoder = PatchRequestDecoder(limits: configuration.limits, requireExperimentalFlag: configuration.requireExperimentalFlag)
        self.duration = Metrics.Timer(label: "taskstatus_request_duration_seconds", dimensions: [("path", "http")])
    }

    func add(to router: Router<APIRequestContext>, recording routes: inout KnownRoutes) {
        for prefix in Self.prefixes {
            router.get("\(prefix)/task-status") { request, context in await list(request, context, experimental: true) }
            router.get("\(prefix)/task-status/v1") { request, context in await list(request, context, experimental: false) }
            router.post("\(prefix)/task-status") { request, context in await write(request, context, experimental: true, creating: true) }
            router.post("\(prefix)/task-status/v1") { request, context in await write(request, context, experimental: false, creating: true) }
            router.patch("\(prefix)/task-status/:id") { request, context in await patch(request, context, experimental: true) }
            router.get("\(prefix)/task-status/:id") { request, context in await get(request, context, experimental: true) }
            router.patch("\(prefix)/task-status/v1/:id") { request, context in await patch(request, context, experimental: false) }
            router.get("\(prefix)/task-status/v1/:id") { request, context in await get(request, context, experimental: false) }
            for path in ["\(prefix)/task-status/:id", "\(prefix)/task-status/v1/:id"] {
                routes.add(path, .patch)
                routes.add(path, .get)
            }
            for path in ["\(prefix)/task-status", "\(prefix)/task-status/v1"] {
                routes.add(path, .post)
                routes.add(path, .get)
            }
        }
    }

    private func patch(_ request: Request, _ context: APIRequestContext, experimental: Bool) async -> Response {
        await write(request, context, experimental: experimental, creating: false)
    }

    /// A PATCH of a task, or (`creating`) a POST of a whole new one: the same checks, engine and
    /// commit; a creation is answered 201 with `Location`.
    private func write(_ request: Request, _ context: APIRequestContext, experimental: Bool, creating: Bool) async -> Response {
        let started = ContinuousClock.now
        defer {
            let (seconds, attoseconds) = (ContinuousClock.now - started).components
            duration.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        }
        let headers = request.headers
        let rateLimitKey: String?
        switch await caller(of: request, context, for: .write) {
        case .success(let key): rateLimitKey = key
        case .failure(let denied): return denied.response
        }
        let bytes: [UInt8]
        do {
            var buffer = try await request.body.collect(upTo: configuration.limits.maxPatchBytes)
            bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            // A Content-Length over the limit never gets here (the edge answers it before the
            // body); a chunked body does, once it has passed the limit.
            return Self.response(.error(413, "the body is over the limit of \(configuration.limits.maxPatchBytes) bytes"))
        } catch {
            // The body did not arrive whole (timed out, or the connection failed): the edge has
            // answered or the peer is gone, so this answer only ends the request.
            return Self.response(.error(400, "the body did not arrive whole: \(error)"))
        }
        var taskId: String?
        if !creating {
            switch Self.taskId(in: context) {
            case .success(let id): taskId = id
            case .failure(let denied): return denied.response
            }
        }
        let requestId = headers[Self.requestIdField]
        var patchRequest = decoder.decode(
            taskId: taskId,
            requestId: requestId,
            entryId: nil,
            replyTo: nil,
            authorization: nil,
            experimental: experimental ? headers[Self.experimentalField] : "true",
            contentType: headers[.contentType],
            ifMatch: creating ? nil : headers[.ifMatch],
            patch: creating ? nil : bytes,
            create: creating ? bytes : nil
        )
        patchRequest.storesReply = requestId != nil
        patchRequest.rateLimitKey = rateLimitKey
        var response = Self.response(await queue.submit(patchRequest))
        if creating, response.status == .created {
            // The task's URL under the path the client used (its prefix, and `/v1` or not).
            let base = request.uri.path.hasSuffix("/") ? String(request.uri.path.dropLast()) : request.uri.path
            let id = patchRequest.taskId.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? patchRequest.taskId
            response.headers[.location] = "\(base)/\(id)"
        }
        return response
    }

    private func get(_ request: Request, _ context: APIRequestContext, experimental: Bool) async -> Response {
        let headers = request.headers
        let rateLimitKey: String?
        switch await caller(of: request, context, for: .read) {
        case .success(let key): rateLimitKey = key
        case .failure(let denied): return denied.response
        }
        if experimental, configuration.requireExperimentalFlag, headers[Self.experimentalField]?.lowercased() != "true" {
            return Self.response(.error(400, "x-sailpoint-experimental must be true for this experimental API"))
        }
        switch Self.taskId(in: context) {
        case .success(let taskId):
            if let hub, Self.asksForEvents(request) {
                var filter = ListQuery()
                filter.ids = [taskId]
                return await watch(request, filter: filter, on: hub)
            }
            return Self.response(await queue.read(taskId: taskId, rateLimitKey: rateLimitKey))
        case .failure(let denied): return denied.response
        }
    }

    /// `GET /task-status`: SailPoint's list, from the index.
    private func list(_ request: Request, _ context: APIRequestContext, experimental: Bool) async -> Response {
        let rateLimitKey: String?
        switch await caller(of: request, context, for: .read) {
        case .success(let key): rateLimitKey = key
        case .failure(let denied): return denied.response
        }
        if experimental, configuration.requireExperimentalFlag, request.headers[Self.experimentalField]?.lowercased() != "true" {
            return Self.response(.error(400, "x-sailpoint-experimental must be true for this experimental API"))
        }
        let query: ListQuery
        do {
            query = try ListQuery(parameters: ListQuery.parameters(fromQuery: Substring(request.uri.query ?? "")))
        } catch {
            return Self.response(.error(400, error.description))
        }
        if let hub, Self.asksForEvents(request) { return await watch(request, filter: query, on: hub) }
        return Self.response(await queue.list(query, rateLimitKey: rateLimitKey))
    }

    /// Whether the client asks for Server-Sent Events, as a browser's `EventSource` does.
    private static func asksForEvents(_ request: Request) -> Bool {
        request.headers[values: .accept].contains { $0.lowercased().contains("text/event-stream") }
    }

    static let lastEventIdField = HTTPField.Name("Last-Event-ID")!

    /// Streams the changes `filter` admits as Server-Sent Events (contract section 9): from the
    /// `Last-Event-ID` header (a reconnecting `EventSource`) or the `lastEventId` parameter (a
    /// list's `X-Last-Event-Id`, for a first connection), else from now. Each change's `data` is
    /// its change-feed JSON and its `id` the feed position after it; `event: reset` tells the
    /// client to list again, and ends the stream.
    private func watch(_ request: Request, filter: ListQuery, on hub: ChangeFeedHub) async -> Response {
        var from: FeedPosition?
        if let text = request.headers[Self.lastEventIdField] ?? request.uri.queryParameters["lastEventId"].map(String.init), !text.isEmpty {
            guard let position = FeedPosition(text, shards: configuration.shards) else {
                return Self.response(
                    .error(
                        400,
                        "Last-Event-ID \(text) is not a position of this bridge's change feed (\(configuration.shards) stream id(s), comma-separated)"
                    )
                )
            }
            from = position
        }
        var fields = HTTPFields()
        fields[.contentType] = "text/event-stream; charset=utf-8"
        fields[.cacheControl] = "no-cache"
        fields[HTTPField.Name("X-Accel-Buffering")!] = "no"
        let watch: ChangeFeedHub.Watch
        do {
            watch = try await hub.watch(filter, from: from)
        } catch {
            switch error {
            case .unavailable(let failure):
                return Self.response(.error(503, "Redis cannot answer for now: \(failure)", headers: [("Retry-After", "1")]))
            case .gone(let reason):
                return Response(
                    status: .ok,
                    headers: fields,
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: ServerSentEvents.preamble + ServerSentEvents.reset(reason)))
                )
            }
        }
        return Response(
            status: .ok,
            headers: fields,
            body: ResponseBody { writer in
                var cursor = WatchCursor(from: watch.start)
                var out = ServerSentEvents.preamble
                for change in watch.backlog {
                    if let id = cursor.accept(change) { ServerSentEvents.append(change.data, id: id, to: &out) }
                }
                try await writer.write(ByteBuffer(bytes: out))
                for await delivery in watch.live {
                    out.removeAll(keepingCapacity: true)
                    switch delivery {
                    case .change(let change):
                        guard let id = cursor.accept(change) else { continue }
                        ServerSentEvents.append(change.data, id: id, to: &out)
                    case .heartbeat:
                        out += ServerSentEvents.heartbeat
                    }
                    try await writer.write(ByteBuffer(bytes: out))
                }
                if watch.ending.value == .behind {
                    try await writer.write(ByteBuffer(bytes: ServerSentEvents.reset("this client fell behind the change feed; list again")))
                }
                try await writer.finish(nil)
            }
        )
    }

    /// The `{id}` of the path, percent-decoded: SailPoint's SDKs encode path parameters, so the
    /// task `a b` arrives as `a%20b` and must name the same task as the stream's `id a b`.
    private static func taskId(in context: APIRequestContext) -> Result<String, Denied> {
        let raw = context.parameters.get("id") ?? ""
        guard let id = raw.removingPercentEncoding else {
            return .failure(Denied(response: response(.error(400, "the task id in the path, \(raw), is not valid percent-encoding"))))
        }
        return .success(id)
    }

    /// A refusal by the authenticator, as the answer to send.
    private struct Denied: Error {
        let response: Response
    }

    /// Checks the token for `access` and names the caller whose rate limit the request counts
    /// against: the token's caller, else (limits on, no authentication) the client's address.
    private func caller(of request: Request, _ context: APIRequestContext, for access: Access) async -> Result<String?, Denied> {
        guard let authenticator else { return .success(configuration.rateLimit.enabled ? Self.address(context) : nil) }
        switch await authenticator.authorize(request.headers[.authorization], for: access) {
        case .allowed(let caller): return .success(caller.id)
        case .denied(let response): return .failure(Denied(response: Self.response(response)))
        }
    }

    static let requestIdField = HTTPField.Name("X-Request-Id")!
    static let experimentalField = HTTPField.Name("X-SailPoint-Experimental")!

    static func address(_ context: APIRequestContext) -> String? {
        context.remoteAddress?.ipAddress
    }

    /// The HTTP response for an engine's answer: its status, body and headers.
    static func response(_ answer: TaskResponse) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        for header in answer.headers {
            if let name = HTTPField.Name(header.name) { fields[name] = header.value }
        }
        return Response(
            status: HTTPResponse.Status(code: answer.status),
            headers: fields,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body))
        )
    }
}
