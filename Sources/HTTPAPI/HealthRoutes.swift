//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import Hummingbird
import JSONPatch

/// `GET /health/live` (the process answers) and `GET /health/ready` (it can do its job).
struct HealthRoutes<Context: RequestContext> {
    let probe: HealthProbe

    func add(to router: Router<Context>, recording routes: inout KnownRoutes) {
        routes.add("health/live", .get)
        routes.add("health/ready", .get)
        router.get("health/live") { _, _ in
            Response.json(.ok, ["status": "live"])
        }
        router.get("health/ready") { _, _ in
            let readiness = await probe.readiness()
            return Response.json(readiness.ready ? .ok : .serviceUnavailable, readiness.json)
        }
    }
}
