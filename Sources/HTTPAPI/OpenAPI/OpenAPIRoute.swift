//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import HTTPTypes
import Hummingbird
import JSONPatch

/// `GET /openapi.json`: the OpenAPI document of every route (``OpenAPIDocument``), as this
/// bridge is configured. It describes the API, so like the status page it needs no token.
struct OpenAPIRoute {
    let document: OpenAPIDocument

    /// The document of the routes `services` make the server serve.
    init(configuration: BridgeConfiguration, services: HTTPServices) {
        document = OpenAPIDocument(
            configuration: configuration,
            auth: services.authenticator?.configuration,
            watching: services.hub != nil,
            metrics: services.metrics != nil
        )
    }

    func add(to router: Router<APIRequestContext>, recording routes: inout KnownRoutes) {
        // Built once: the configuration does not change while the server runs.
        let body = document.json.serialized()
        routes.add("/openapi.json", .get)
        router.get("/openapi.json") { _, _ in
            var fields = HTTPFields()
            fields[.contentType] = "application/json"
            fields[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
    }
}
