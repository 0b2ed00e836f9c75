//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Bridge
public import JSONPatch

/// Documents and requests the test targets share.
public enum Fixtures {
    /// A valid TaskStatus, as SailPoint's example has it.
    public static func task(_ id: String) -> JSONValue {
        [
            "id": .string(id), "type": "QUARTZ", "uniqueName": "Cloud Account Aggregation",
            "description": "Aggregates from the specified application.",
            "parentName": nil, "launcher": "sweep",
            "target": ["id": "c6dc37bf508149b28ce5b7d90ca4bbf9", "type": "APPLICATION", "name": "Active Directory [source]"],
            "created": "2020-07-11T21:23:15.000Z", "modified": "2020-07-11T21:23:15.000Z", "launched": "2020-07-11T21:23:15.000Z",
            "completed": nil, "completionStatus": nil, "messages": [], "returns": [["name": "label", "attributeName": "identityCount"]],
            "attributes": ["identityCount": 0], "progress": "Started", "percentComplete": 0,
        ]
    }
}

extension PatchRequestDecoder {
    /// A request for task `t1` with request id `r`, as the HTTP API would decode it.
    public func request(_ patch: String, ifMatch: String? = nil) -> PatchRequest {
        decode(
            taskId: "t1",
            requestId: "r",
            entryId: nil,
            replyTo: nil,
            authorization: nil,
            experimental: "true",
            contentType: nil,
            ifMatch: ifMatch,
            patch: Array(patch.utf8)
        )
    }
}
