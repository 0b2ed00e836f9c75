//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import HTTPTypes
import Hummingbird

/// `GET /`: the status page, built into the binary (``StatusPage``). It calls the API like any
/// client, so it needs no authentication of its own: with authentication on, it asks for a token.
struct PageRoute {
    func add(to router: Router<APIRequestContext>, recording routes: inout KnownRoutes) {
        routes.add("/", .get)
        router.get("/") { _, _ in
            var fields = HTTPFields()
            fields[.contentType] = "text/html; charset=utf-8"
            fields[.cacheControl] = "no-cache"
            // The page's script is inline and talks only to this origin.
            fields[HTTPField.Name("Content-Security-Policy")!] =
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
            return Response(status: .ok, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: StatusPage.html)))
        }
    }
}
