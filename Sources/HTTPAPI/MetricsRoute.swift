//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Hummingbird
import Prometheus

/// `GET /metrics`: the Prometheus text of the process's metrics.
struct MetricsRoute {
    let registry: PrometheusCollectorRegistry

    func add(to router: Router<APIRequestContext>, recording routes: inout KnownRoutes) {
        routes.add("metrics", .get)
        router.get("metrics") { _, _ in
            var fields = HTTPFields()
            fields[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }
}
