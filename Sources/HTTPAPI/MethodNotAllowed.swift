//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import HTTPTypes
import Hummingbird
import TaskStatus

/// The API's paths and the methods each answers, as the routes register them: Hummingbird's
/// router answers 404 for a known path with another method, where HTTP wants 405 and `Allow`.
struct KnownRoutes: Sendable {
    private var routes: [(segments: [Substring], methods: Set<HTTPRequest.Method>)] = []

    /// Records `method` on `path`, a router path (`:name` matches one segment).
    mutating func add(_ path: String, _ method: HTTPRequest.Method) {
        let segments = path.split(separator: "/")
        if let index = routes.firstIndex(where: { $0.segments == segments }) {
            routes[index].methods.insert(method)
        } else {
            routes.append((segments, [method]))
        }
    }

    /// The methods the route the router picks for `path` answers; empty for an unknown path.
    ///
    /// Matched as the router's trie matches: segment by segment, a literal segment wins over a
    /// parameter and is not given up for it later, so `/task-status/v1` is the list's path (GET,
    /// POST), never the task `v1` (whose PATCH the router does not reach).
    func methods(for path: String) -> Set<HTTPRequest.Method> {
        let segments = path.split(separator: "/")
        var candidates = routes.filter { $0.segments.count >= segments.count }
        for (depth, segment) in segments.enumerated() {
            let literal = candidates.filter { $0.segments[depth] == segment }
            candidates = literal.isEmpty ? candidates.filter { $0.segments[depth].hasPrefix(":") } : literal
        }
        var methods: Set<HTTPRequest.Method> = []
        for route in candidates where route.segments.count == segments.count { methods.formUnion(route.methods) }
        return methods
    }
}

/// Answers a request the router found no route for: 405 with `Allow` when its path is known, else
/// the router's 404. Added to the router after every route, it wraps only the not-found answer.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: KnownRoutes

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let allowed = routes.methods(for: request.uri.path)
        guard !allowed.isEmpty, !allowed.contains(request.method) else { return try await next(request, context) }
        let list = allowed.map(\.rawValue).sorted().joined(separator: ", ")
        let body = ErrorEnvelope.body(status: 405, cause: "\(request.method.rawValue) is not allowed on \(request.uri.path); use \(list)")
        return .json(.methodNotAllowed, body, headers: [.allow: list])
    }
}
