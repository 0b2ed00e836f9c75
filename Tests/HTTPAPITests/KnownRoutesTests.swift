//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import HTTPTypes
import Testing

@testable import HTTPAPI

@Suite("HTTP edge: known paths and their methods (405 against 404)")
struct KnownRoutesTests {
    @Test("a path matches the routes' patterns segment by segment; :name takes one segment")
    func matching() {
        var routes = KnownRoutes()
        routes.add("/task-status/:id", .get)
        routes.add("/task-status/:id", .patch)
        routes.add("/v2025/task-status/v1/:id", .patch)
        routes.add("health/live", .get)
        #expect(routes.methods(for: "/task-status/t1") == [.get, .patch])
        #expect(routes.methods(for: "/task-status/a%20b") == [.get, .patch])
        #expect(routes.methods(for: "/v2025/task-status/v1/t1") == [.patch])
        #expect(routes.methods(for: "/health/live") == [.get])
        #expect(routes.methods(for: "/health/live/") == [.get])
        #expect(routes.methods(for: "/task-status").isEmpty)
        #expect(routes.methods(for: "/task-status/t1/more").isEmpty)
        #expect(routes.methods(for: "/nope").isEmpty)
    }

    @Test("a literal segment wins over :name, as the router picks: /task-status/v1 is the list, not the task v1")
    func literalFirst() {
        var routes = KnownRoutes()
        routes.add("/task-status", .get)
        routes.add("/task-status", .post)
        routes.add("/task-status/v1", .get)
        routes.add("/task-status/v1", .post)
        routes.add("/task-status/:id", .get)
        routes.add("/task-status/:id", .patch)
        #expect(routes.methods(for: "/task-status/v1") == [.get, .post])
        #expect(routes.methods(for: "/task-status/t1") == [.get, .patch])
    }
}
