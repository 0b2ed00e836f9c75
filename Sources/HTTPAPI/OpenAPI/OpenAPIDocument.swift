//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import JSONPatch
import TaskStatus

/// The OpenAPI 3.1 document of the routes as this bridge serves them (`GET /openapi.json`):
/// SailPoint's task-status API with its schemas and parameter names, this bridge's additions
/// (each marked `x-bridge-addition`), and the security that is enforced: a bearer JWT with the
/// configured scopes, or none at all with `--no-auth`.
struct OpenAPIDocument {
    /// The bridge's settings: the experimental flag, the limits, the rate limit.
    let configuration: BridgeConfiguration
    /// What verifies tokens; `nil` when authentication is off.
    let auth: AuthConfiguration?
    /// Whether the task and list URLs stream Server-Sent Events.
    let watching: Bool
    /// Whether `GET /metrics` is served.
    let metrics: Bool

    /// The document.
    var json: JSONValue {
        var components: JSONValue = [
            "schemas": schemas, "parameters": parameters, "headers": headers, "responses": responses,
        ]
        if auth != nil {
            components[member: "securitySchemes"] = [
                "bearerAuth": [
                    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": """
                    A JWT in `Authorization: Bearer <token>`. Its signature, `exp` (required unless \
                    configured otherwise), `nbf`, `iat` and, when configured, `iss` and `aud` are checked; the \
                    `scope` claim (a space-separated string or an array) must hold one of the scopes an \
                    operation lists.
                    """,
                ]
            ]
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "Task status (task-status-bridge)",
                "version": "1.0.0",
                "description": .string(Self.description),
                "license": ["name": "Apache 2.0", "identifier": "Apache-2.0"],
            ],
            "tags": [
                ["name": "Task Status", "description": "SailPoint's task-status API, served from Redis."],
                [
                    "name": "Operations", "description": "Health, metrics, the status page and this document.",
                    "x-bridge-addition": "Addition of this bridge: SailPoint's API has no such routes.",
                ],
            ],
            "paths": paths,
            "components": components,
        ]
    }

    private static let description = """
        SailPoint's task-status API as task-status-bridge serves it over Redis: the same engine, checks and \
        atomic commit as its Redis stream of requests. Every task route is served at the root and under \
        `/beta`, `/v2024`, `/v2025` and `/v2026` (the base URLs of SailPoint's SDKs). Routes and properties \
        this bridge adds to SailPoint's API are marked `x-bridge-addition`.

        Besides the answers each operation lists, the connection's edge may answer any request before the \
        API sees it, with the error envelope and `Connection: close`: 413 for a body over the limit, 431 for \
        a request head over 16 KiB, 408 for a request that did not arrive in time, 400 for framing HTTP/1.1 \
        forbids. A known path asked with another method is answered 405 with `Allow` (addition of this \
        bridge), an unknown path 404.
        """

    // MARK: Paths

    private var paths: JSONValue {
        var paths: JSONValue = [:]
        for prefix in TaskStatusRoutes.prefixes {
            for v1 in [false, true] {
                let base = "\(prefix)/task-status\(v1 ? "/v1" : "")"
                let names = OperationNames(prefix: prefix, v1: v1)
                paths[member: base] = ["get": listOperation(names), "post": createOperation(names)]
                paths[member: "\(base)/{id}"] = [
                    "parameters": [Self.ref("parameters", "id")],
                    "get": getOperation(names),
                    "patch": patchOperation(names),
                ]
            }
        }
        paths[member: "/health/live"] = ["get": healthLive]
        paths[member: "/health/ready"] = ["get": healthReady]
        if metrics { paths[member: "/metrics"] = ["get": metricsOperation] }
        paths[member: "/"] = ["get": pageOperation]
        paths[member: "/openapi.json"] = ["get": documentOperation]
        return paths
    }

    /// The operation ids of one prefix and form: SailPoint's names, suffixed by both.
    private struct OperationNames {
        let prefix: String
        let v1: Bool

        func id(_ name: String) -> JSONValue {
            let version = prefix.isEmpty ? "" : prefix.dropFirst().prefix(1).uppercased() + prefix.dropFirst(2)
            return .string(name + (v1 ? "V1" : "") + version)
        }

        /// Whether the operation needs `X-SailPoint-Experimental: true`.
        var experimental: Bool { !v1 }
    }

    private func listOperation(_ names: OperationNames) -> JSONValue {
        var parameters = experimentalParameter(names)
        parameters += ["limit", "offset", "count", "sorters", "filters"].map { Self.ref("parameters", $0) }
        var ok: JSONValue = [
            "description": "The tasks that pass the filters, in the order `sorters` asks, one page of them.",
            "headers": [
                "X-Last-Event-Id": Self.ref("headers", "X-Last-Event-Id"),
                "X-Total-Count": Self.ref("headers", "X-Total-Count"),
            ],
            "content": [
                "application/json": ["schema": ["type": "array", "items": Self.ref("schemas", "TaskStatus")]]
            ],
        ]
        if watching { ok[member: "content"][member: "text/event-stream"] = eventStream(list: true) }
        return operation(
            names.id("getTaskStatusList"),
            summary: "List task statuses",
            description: """
                SailPoint's getTaskStatusList, from the bridge's index. Unknown query parameters are ignored, \
                as SailPoint's API ignores them; an invalid one is a 400 naming it. **Our choice:** `type` filters \
                the TaskStatus `type` property (QUARTZ, QPOC, QUEUED_TASK).\(names.experimental ? experimentalNote : "")
                """,
            access: .read,
            parameters: parameters,
            responses: ["200": ok, "400": Self.ref("responses", "BadRequest"), "500": Self.ref("responses", "InternalFault")]
        )
    }

    private func createOperation(_ names: OperationNames) -> JSONValue {
        var parameters = experimentalParameter(names)
        parameters.append(Self.ref("parameters", "X-Request-Id"))
        var created = taskAnswer("The task as stored, at revision 1.")
        created[member: "headers"][member: "Location"] = Self.ref("headers", "Location")
        var result = operation(
            names.id("createTaskStatus"),
            summary: "Create a task status",
            description: """
                Addition of this bridge: creates a task from a whole TaskStatus, validated as an update's result \
                is, stored at revision 1 and announced like an update. An id that exists already is a 409 and \
                changes nothing.\(names.experimental ? experimentalNote : "")
                """,
            access: .write,
            parameters: parameters,
            responses: [
                "201": created,
                "400": Self.ref("responses", "BadRequest"),
                "409": Self.ref("responses", "Conflict"),
                "413": Self.ref("responses", "PayloadTooLarge"),
                "415": Self.ref("responses", "UnsupportedMediaType"),
                "500": Self.ref("responses", "InternalFault"),
            ]
        )
        result[member: "requestBody"] = [
            "required": true,
            "description": "The whole TaskStatus; `application/json` only (another media type is a 415).",
            "content": ["application/json": ["schema": Self.ref("schemas", "TaskStatusCreation")]],
        ]
        result[member: "x-bridge-addition"] = "SailPoint's API cannot create a task status."
        return result
    }

    private func getOperation(_ names: OperationNames) -> JSONValue {
        var ok = taskAnswer("The task.")
        if watching { ok[member: "content"][member: "text/event-stream"] = eventStream(list: false) }
        return operation(
            names.id("getTaskStatus"),
            summary: "Get a task status",
            description: "SailPoint's getTaskStatus.\(names.experimental ? experimentalNote : "")",
            access: .read,
            parameters: experimentalParameter(names),
            responses: [
                "200": ok, "400": Self.ref("responses", "BadRequest"), "404": Self.ref("responses", "NotFound"),
                "500": Self.ref("responses", "InternalFault"),
            ]
        )
    }

    private func patchOperation(_ names: OperationNames) -> JSONValue {
        var parameters = experimentalParameter(names)
        parameters += [Self.ref("parameters", "If-Match"), Self.ref("parameters", "X-Request-Id")]
        let patch: JSONValue = ["schema": Self.ref("schemas", "JsonPatch")]
        var result = operation(
            names.id("updateTaskStatus"),
            summary: "Update a task status",
            description: """
                SailPoint's updateTaskStatus: a JSON Patch (RFC 6902), applied all or nothing; the result must be \
                a valid TaskStatus (`id` and `created` never change). `modified` becomes the time of the update \
                unless the patch sets it. A patch whose operation fails (a `test` that does not hold, a path that \
                does not exist, a result that breaks the schema) is a 400.\(names.experimental ? experimentalNote : "")
                """,
            access: .write,
            parameters: parameters,
            responses: [
                "200": taskAnswer("The updated task."),
                "400": Self.ref("responses", "BadRequest"),
                "404": Self.ref("responses", "NotFound"),
                "412": Self.ref("responses", "PreconditionFailed"),
                "413": Self.ref("responses", "PayloadTooLarge"),
                "415": Self.ref("responses", "UnsupportedMediaType"),
                "500": Self.ref("responses", "InternalFault"),
            ]
        )
        result[member: "requestBody"] = [
            "required": true,
            "description": .string(
                """
                The JSON Patch, `application/json-patch+json` or `application/json` (another media type is a \
                415): at most \(configuration.limits.maxOperations) operations, \(configuration.limits.maxPatchBytes) \
                bytes (413 above) and \(configuration.limits.maxDepth) levels of nesting.
                """
            ),
            "content": ["application/json-patch+json": patch, "application/json": patch],
        ]
        return result
    }

    private var experimentalNote: String {
        configuration.requireExperimentalFlag
            ? " Experimental in SailPoint's API: it needs `X-SailPoint-Experimental: true` (400 without); the `/v1` form does not."
            : " Experimental in SailPoint's API; this bridge runs with `--require-experimental false`, so no header is needed."
    }

    private func experimentalParameter(_ names: OperationNames) -> [JSONValue] {
        names.experimental && configuration.requireExperimentalFlag ? [Self.ref("parameters", "X-SailPoint-Experimental")] : []
    }

    /// A 200 or 201 with a TaskStatus and its `ETag`.
    private func taskAnswer(_ description: String) -> JSONValue {
        [
            "description": .string(description),
            "headers": ["ETag": Self.ref("headers", "ETag")],
            "content": ["application/json": ["schema": Self.ref("schemas", "TaskStatus")]],
        ]
    }

    private func eventStream(list: Bool) -> JSONValue {
        let description = """
            Addition of this bridge: asked with `Accept: text/event-stream` (as a browser's `EventSource` sends), \
            the \(list ? "list URL, with the same `filters`," : "task's URL") answers Server-Sent Events that last: \
            `retry: 2000` first, then one event per change \(list ? "that passes the filters" : "of the task"): `id:` \
            the change-feed position after it, `data:` the change-feed entry (`id`, `rev`, `requestId`, `patch`, \
            `summary`, and `task` when small). The `Last-Event-ID` header, or the `lastEventId` query parameter (a \
            list's `X-Last-Event-Id`), resumes after a position (400 if it is not one of this bridge). A comment \
            (`: keep-alive`) follows 15 s without an event; `event: reset` with `data: {"reason":"..."}` tells the \
            client to list again, and ends the stream.
            """
        return [
            "schema": ["type": "string", "description": .string(description)],
            "x-bridge-addition": "Live updates; SailPoint's API has none.",
        ]
    }

    /// An operation with the answers every task operation shares: the edge's, the rate limit's, the
    /// authentication's when it is on, and 503.
    private func operation(
        _ operationId: JSONValue,
        summary: String,
        description: String,
        access: Access,
        parameters: [JSONValue],
        responses: JSONValue
    ) -> JSONValue {
        var responses = responses
        for (status, name) in [("408", "RequestTimeout"), ("431", "RequestHeaderFieldsTooLarge"), ("503", "ServiceUnavailable")] {
            responses[member: status] = Self.ref("responses", name)
        }
        if configuration.rateLimit.enabled { responses[member: "429"] = Self.ref("responses", "TooManyRequests") }
        var result: JSONValue = [
            "tags": ["Task Status"], "operationId": operationId, "summary": .string(summary), "description": .string(description),
        ]
        if !parameters.isEmpty { result[member: "parameters"] = .array(parameters) }
        if let auth {
            responses[member: "401"] = Self.ref("responses", "Unauthorized")
            responses[member: "403"] = Self.ref("responses", "Forbidden")
            // One requirement per scope: any one of them is enough.
            let scopes = access == .read ? auth.readScopes : auth.writeScopes
            result[member: "security"] = .array(scopes.sorted().map { ["bearerAuth": [.string($0)]] })
        }
        result[member: "responses"] = responses.sortedByKey
        return result
    }

    // MARK: Operations of this bridge

    private var healthLive: JSONValue {
        plainOperation(
            "getHealthLive",
            summary: "Liveness",
            description: "200 while the process runs.",
            responses: [
                "200": [
                    "description": "The process answers.",
                    "content": [
                        "application/json": [
                            "schema": [
                                "type": "object", "required": ["status"], "properties": ["status": ["type": "string", "const": "live"]],
                            ]
                        ]
                    ],
                ]
            ]
        )
    }

    private var healthReady: JSONValue {
        let readiness: JSONValue = ["application/json": ["schema": Self.ref("schemas", "Readiness")]]
        return plainOperation(
            "getHealthReady",
            summary: "Readiness",
            description: "200 when Redis answers, the consumer group exists and the consumer reads; else 503 with the reasons.",
            responses: [
                "200": ["description": "Ready.", "content": readiness],
                "503": ["description": "Not ready; `reasons` says why.", "content": readiness],
            ]
        )
    }

    private var metricsOperation: JSONValue {
        plainOperation(
            "getMetrics",
            summary: "Metrics",
            description: "The process's metrics in Prometheus's text format.",
            responses: ["200": ["description": "Prometheus text (version 0.0.4).", "content": ["text/plain": ["schema": ["type": "string"]]]]]
        )
    }

    private var pageOperation: JSONValue {
        plainOperation(
            "getStatusPage",
            summary: "The status page",
            description: """
                A page built into the binary: tasks from the list, live updates, filters, a detail view. It calls the \
                API like any client (with authentication on, it asks for a token), so it needs none itself.
                """,
            responses: ["200": ["description": "The page.", "content": ["text/html": ["schema": ["type": "string"]]]]]
        )
    }

    private var documentOperation: JSONValue {
        plainOperation(
            "getOpenAPIDocument",
            summary: "This document",
            description: "The OpenAPI document of every route, as this bridge is configured.",
            responses: ["200": ["description": "The document.", "content": ["application/json": ["schema": ["type": "object"]]]]]
        )
    }

    /// An operation of this bridge's own: no authentication, the edge's answers.
    private func plainOperation(_ operationId: String, summary: String, description: String, responses: JSONValue) -> JSONValue {
        var responses = responses
        for (status, name) in [("400", "BadRequest"), ("408", "RequestTimeout"), ("431", "RequestHeaderFieldsTooLarge")] {
            responses[member: status] = Self.ref("responses", name)
        }
        var result: JSONValue = [
            "tags": ["Operations"], "operationId": .string(operationId), "summary": .string(summary),
            "description": .string(description), "x-bridge-addition": "Not part of SailPoint's API.",
        ]
        if auth != nil { result[member: "security"] = [] }
        result[member: "responses"] = responses.sortedByKey
        return result
    }

    // MARK: Components

    private var parameters: JSONValue {
        [
            "id": [
                "name": "id", "in": "path", "required": true,
                "description": """
                The task id, percent-encoded (`a%20b` is the task `a b`): 1 to 256 bytes of UTF-8, no control \
                characters, not starting with `}` (400 otherwise; broken percent-encoding is a 400 too).
                """,
                "schema": Self.ref("schemas", "TaskId"),
                "example": "ef38f94347e94562b5bb8424a56397d8",
            ],
            "X-SailPoint-Experimental": [
                "name": "X-SailPoint-Experimental", "in": "header", "required": true,
                "description": "Use this header to enable this experimental API: `true`, in any letter case (400 otherwise).",
                "schema": ["type": "string", "pattern": "^[Tt][Rr][Uu][Ee]$"],
                "example": "true",
            ],
            "If-Match": [
                "name": "If-Match", "in": "header", "required": false,
                "description": """
                Addition of this bridge: the revision the update expects, as the `ETag` gave it (`"8"`, `W/"8"` \
                or `8`); another revision is a 412, a value of another form a 400.
                """,
                "schema": ["type": "string", "pattern": #"^(W/)?("[0-9]{1,18}"|[0-9]{1,18})$"#],
                "x-bridge-addition": "Optimistic concurrency; SailPoint's API has no If-Match.",
            ],
            "X-Request-Id": [
                "name": "X-Request-Id", "in": "header", "required": false,
                "description": """
                Addition of this bridge: the request's idempotency key, at most 256 bytes of UTF-8 (400 above). A repeat of \
                it on the same task is answered from the stored reply of the first (for 24 hours by default), \
                never applied again. Without it nothing is stored.
                """,
                "schema": ["type": "string", "maxLength": 256],
                "x-bridge-addition": "Idempotent retries; SailPoint's API has no such header.",
            ],
            "limit": [
                "name": "limit", "in": "query", "required": false,
                "description": .string("Max number of results to return, 0 to \(ListQuery.maxLimit)."),
                "schema": ["type": "integer", "format": "int32", "minimum": 0, "maximum": .integer(Int64(ListQuery.maxLimit)), "default": 250],
            ],
            "offset": [
                "name": "offset", "in": "query", "required": false,
                "description": "Offset into the full result set: the tasks skipped first.",
                "schema": ["type": "integer", "format": "int64", "minimum": 0, "maximum": .integer(Int64.max), "default": 0],
            ],
            "count": [
                "name": "count", "in": "query", "required": false,
                "description": "If `true`, the `X-Total-Count` header holds the number of tasks that pass the filters.",
                "schema": ["type": "boolean", "default": false],
            ],
            "sorters": [
                "name": "sorters", "in": "query", "required": false,
                "description": "Sort by `created`, oldest first, or `-created`, newest first; ties go by id, in the same direction.",
                "schema": ["type": "string", "enum": ["created", "-created"], "default": "-created"],
            ],
            "filters": [
                "name": "filters", "in": "query", "required": false,
                "description": """
                Filter results using SailPoint's filter syntax: terms joined by `and`, strings in double quotes \
                (`\\"` escapes). Supported: `id eq, in`; `sourceId eq, in` (the task's `target.id`); \
                `completionStatus eq, in, isnull` (values in any letter case); `type eq, in`; `launcher eq, in`. \
                `in` takes at most 250 values. Anything else is a 400 naming it.
                """,
                "schema": ["type": "string", "pattern": .string(Self.filterPattern)],
                "example": #"completionStatus in ("SUCCESS","ERROR") and launcher eq "scheduler""#,
            ],
        ]
    }

    /// SailPoint's filter grammar, the part the list supports (`ListQuery`), as a pattern: what
    /// matches it is accepted. (The list also takes other spacing and enum values in lower case.)
    static let filterPattern: String = {
        let string = #""(?:[^"\\]|\\[\s\S])*""#
        let status = #""(?:SUCCESS|WARNING|ERROR|TERMINATED|TEMPERROR)""#
        func values(_ value: String) -> String { #"(?:eq *\#(value)|in *\( *\#(value)(?: *, *\#(value)){0,249} *\))"# }
        let term = "(?:(?:id|sourceId|type|launcher) +\(values(string))|completionStatus +(?:\(values(status))|isnull))"
        return "^ *\(term)(?: +and +\(term))* *$"
    }()

    private var headers: JSONValue {
        [
            "ETag": [
                "description": "The task's revision (`\"8\"`): give it back in `If-Match` to update only that revision.",
                "required": true,
                "schema": ["type": "string", "pattern": #"^"[0-9]+"$"#],
            ],
            "Location": [
                "description": "The new task's URL under the path the request used, its id percent-encoded.",
                "required": true,
                "schema": ["type": "string"],
            ],
            "Retry-After": [
                "description": "Seconds to wait before trying again.",
                "required": true,
                "schema": ["type": "string", "pattern": "^[0-9]+$"],
            ],
            "X-Total-Count": [
                "description": "With `count=true`: the number of tasks that pass the filters.",
                "required": false,
                "schema": ["type": "string", "pattern": "^[0-9]+$"],
            ],
            "X-Last-Event-Id": [
                "description": """
                Addition of this bridge: the change-feed position read just before the list (a Redis stream \
                id; with shards, one per shard joined by `,`). Watching from it misses nothing the list does \
                not show.
                """,
                "required": true,
                "schema": ["type": "string"],
                "x-bridge-addition": "Resuming live updates from a list.",
            ],
        ]
    }

    private var responses: JSONValue {
        func envelope(_ description: String, retry: Bool = false) -> JSONValue {
            var response: JSONValue = [
                "description": .string(description),
                "content": ["application/json": ["schema": Self.ref("schemas", "ErrorResponseDto")]],
            ]
            if retry { response[member: "headers"] = ["Retry-After": Self.ref("headers", "Retry-After")] }
            return response
        }
        return [
            "BadRequest": envelope(
                "Client Error - Returned if the request body is invalid: a bad parameter, header, patch or task, a failed `test`, a result that breaks the schema."
            ),
            "Unauthorized": [
                "description": "Unauthorized - Returned if there is no authorization header, or if the JWT token is expired.",
                "content": [
                    "application/json": [
                        "schema": [
                            "type": "object", "required": ["error"],
                            "properties": ["error": ["type": "string", "description": "A message describing the error"]],
                            "example": ["error": "JWT validation failed: JWT is expired"],
                        ]
                    ]
                ],
            ],
            "Forbidden": envelope("Forbidden - Returned if the user you are running as, doesn't have access to this end-point."),
            "NotFound": envelope("Not Found - returned if the request URL refers to a resource or object that does not exist"),
            "Conflict": envelope("Addition of this bridge: a task with this id exists already; nothing changed."),
            "PreconditionFailed": envelope("Addition of this bridge: `If-Match` names another revision than the task's."),
            "PayloadTooLarge": envelope("The body is over the limit of \(configuration.limits.maxPatchBytes) bytes."),
            "UnsupportedMediaType": envelope("The body's media type is not one this operation takes."),
            "TooManyRequests": [
                "description": "Too Many Requests - Returned in response to too many requests in a given period of time.",
                "headers": ["Retry-After": Self.ref("headers", "Retry-After")],
                "content": [
                    "application/json": [
                        "schema": [
                            "type": "object",
                            "properties": ["message": ["type": "string", "description": "A message describing the error"]],
                            "example": ["message": " Rate Limit Exceeded "],
                        ]
                    ]
                ],
            ],
            "InternalFault": envelope("Internal Server Error - Returned if there is an unexpected error: a stored task that does not decode."),
            "ServiceUnavailable": envelope(
                "Addition of this bridge: Redis cannot answer for now, the task stayed contended, or too many updates wait; try again after `Retry-After`.",
                retry: true
            ),
            "RequestTimeout": envelope("Addition of this bridge: the request did not arrive in time (the connection is closed)."),
            "RequestHeaderFieldsTooLarge": envelope("Addition of this bridge: the request head is over 16 KiB (the connection is closed)."),
        ]
    }

    // MARK: Schemas

    private var schemas: JSONValue {
        let nullableString: JSONValue = ["type": ["string", "null"]]
        let message = ErrorEnvelope.detail(for: 400)
        return [
            "TaskId": [
                "type": "string", "minLength": 1, "maxLength": 256,
                "pattern": #"^[^\x00-\x1F\x7F}][^\x00-\x1F\x7F]*$"#,
                "description": "1 to 256 bytes of UTF-8, no control characters, not starting with `}`.",
            ],
            "TaskStatus": taskStatus(creating: false),
            "TaskStatusCreation": taskStatus(creating: true),
            "TargetSummary": [
                "type": ["object", "null"],
                "description": "Target of the task: its source or identity.",
                "properties": [
                    "id": nullableString, "type": ["type": ["string", "null"], "enum": ["APPLICATION", "IDENTITY", nil]],
                    "name": nullableString,
                ],
            ],
            "TaskStatusMessage": [
                "type": "object", "required": ["type", "key"],
                "description": "A message of the task.",
                "properties": [
                    "type": ["type": "string", "enum": ["INFO", "WARN", "ERROR"], "description": "Type of the message."],
                    "localizedText": [
                        "type": ["object", "null"], "description": "Localized form of the message.",
                        "properties": ["locale": nullableString, "message": nullableString],
                    ],
                    "key": ["type": "string", "description": "Key of the message."],
                    "parameters": [
                        "type": ["array", "null"], "items": ["type": "object"], "description": "Message parameters for internationalization.",
                    ],
                ],
            ],
            "TaskReturnDetails": [
                "type": "object", "required": ["name", "attributeName"],
                "description": "A value the task returns.",
                "properties": ["name": ["type": "string"], "attributeName": ["type": "string"]],
            ],
            "TaskDefinitionSummary": [
                "type": ["object", "null"],
                "description": "Definition of the task.",
                "properties": [
                    "id": nullableString, "uniqueName": nullableString, "description": nullableString, "parentName": nullableString,
                    "executor": nullableString, "arguments": ["type": ["object", "null"]],
                ],
            ],
            "JsonPatch": [
                "type": "array",
                "maxItems": .integer(Int64(configuration.limits.maxOperations)),
                "items": Self.ref("schemas", "JsonPatchOperation"),
                "description": "A JSON Patch document (RFC 6902), applied all or nothing.",
                "example": [
                    ["op": "replace", "path": "/percentComplete", "value": 60], ["op": "replace", "path": "/progress", "value": "Aggregating"],
                ],
            ],
            "JsonPatchOperation": [
                "description": """
                One operation of RFC 6902. Members other than those of its `op` are ignored.
                """,
                "x-bridge-addition": "SailPoint's JsonPatchOperation has no `move` or `copy` and narrows `value`; this is RFC 6902's.",
                "oneOf": [
                    [
                        "title": "add, replace or test", "type": "object", "required": ["op", "path", "value"],
                        "properties": [
                            "op": ["type": "string", "enum": ["add", "replace", "test"]], "path": Self.ref("schemas", "JsonPointer"), "value": [:],
                        ],
                    ],
                    [
                        "title": "remove", "type": "object", "required": ["op", "path"],
                        "properties": ["op": ["type": "string", "const": "remove"], "path": Self.ref("schemas", "JsonPointer")],
                    ],
                    [
                        "title": "move or copy", "type": "object", "required": ["op", "path", "from"],
                        "properties": [
                            "op": ["type": "string", "enum": ["move", "copy"]], "path": Self.ref("schemas", "JsonPointer"),
                            "from": Self.ref("schemas", "JsonPointer"),
                        ],
                    ],
                ],
            ],
            "JsonPointer": [
                "type": "string", "pattern": "^(/([^~/]|~[01])*)*$",
                "description": "A JSON Pointer (RFC 6901) into the TaskStatus.",
            ],
            "ErrorResponseDto": [
                "type": "object",
                "required": ["detailCode", "trackingId", "messages", "causes"],
                "properties": [
                    "detailCode": ["type": "string", "description": "Fine-grained error code providing more detail of the error."],
                    "trackingId": ["type": "string", "pattern": "^[0-9a-f]{32}$", "description": "Unique tracking id for the error."],
                    "messages": [
                        "type": "array", "items": Self.ref("schemas", "ErrorMessageDto"), "description": "Generic localized reason for error",
                    ],
                    "causes": [
                        "type": "array", "items": Self.ref("schemas", "ErrorMessageDto"),
                        "description": "Plain-text descriptive reasons to provide additional detail to the text provided in the messages field",
                    ],
                ],
                "example": [
                    "detailCode": .string(message.code), "trackingId": "e7eab60924f64aa284175b9fa3309599",
                    "messages": [["locale": "en-US", "localeOrigin": "DEFAULT", "text": .string(message.text)]],
                    "causes": [["locale": "en-US", "localeOrigin": "DEFAULT", "text": "operation 1 (replace /percentComplete): ..."]],
                ],
            ],
            "ErrorMessageDto": [
                "type": "object",
                "required": ["locale", "localeOrigin", "text"],
                "properties": [
                    "locale": ["type": ["string", "null"], "description": "The locale for the message text, a BCP 47 language tag."],
                    "localeOrigin": ["type": ["string", "null"], "enum": ["DEFAULT", "REQUEST", nil]],
                    "text": ["type": "string", "description": "Actual text of the error message in the indicated locale."],
                ],
            ],
            "Readiness": [
                "type": "object", "required": ["status"],
                "x-bridge-addition": "Readiness of the bridge.",
                "properties": [
                    "status": ["type": "string", "enum": ["ready", "not ready"]],
                    "reasons": ["type": "array", "items": ["type": "string"]],
                    "pending": ["type": ["integer", "null"], "description": "Entries read but not acknowledged, over every shard."],
                    "lag": ["type": ["integer", "null"], "description": "Entries not read yet, over every shard."],
                    "consumers": ["type": ["integer", "null"]],
                    "cluster_state": ["type": "string"],
                    "slots_covered": ["type": ["integer", "null"]],
                    "shards": ["type": "array", "items": ["type": "object"]],
                ],
            ],
        ]
    }

    /// SailPoint's TaskStatus as answered, or (`creating`) as a creation takes it: only the
    /// properties that cannot be null are required there, a missing nullable one is `null`, and
    /// enum values may come in any letter case.
    private func taskStatus(creating: Bool) -> JSONValue {
        let nullableString: JSONValue = ["type": ["string", "null"]]
        let dateTime: JSONValue = ["type": "string", "format": "date-time", "example": "2020-07-11T21:23:15.000Z"]
        let nullableDateTime: JSONValue = ["type": ["string", "null"], "format": "date-time", "example": "2020-07-11T21:23:15.000Z"]
        let properties: JSONValue = [
            "id": creating
                ? Self.ref("schemas", "TaskId")
                : ["type": "string", "description": "System-generated unique ID of the task this TaskStatus represents"],
            "type": ["type": "string", "enum": ["QUARTZ", "QPOC", "QUEUED_TASK"], "description": "Type of task this TaskStatus represents"],
            "uniqueName": ["type": "string", "description": "Name of the task this TaskStatus represents"],
            "description": ["type": "string", "description": "Description of the task this TaskStatus represents"],
            "parentName": ["type": ["string", "null"], "description": "Name of the parent of the task this TaskStatus represents"],
            "launcher": ["type": "string", "description": "Service to call if the task this TaskStatus represents is launched"],
            "target": Self.ref("schemas", "TargetSummary"),
            "created": dateTime,
            "modified": nullableDateTime,
            "launched": nullableDateTime,
            "completed": nullableDateTime,
            "completionStatus": [
                "type": ["string", "null"], "enum": ["SUCCESS", "WARNING", "ERROR", "TERMINATED", "TEMPERROR", nil],
                "description": "Completion status of the task this TaskStatus represents",
            ],
            "messages": ["type": "array", "items": Self.ref("schemas", "TaskStatusMessage"), "description": "Messages associated with the task"],
            "returns": ["type": "array", "items": Self.ref("schemas", "TaskReturnDetails"), "description": "Return values from the task"],
            "attributes": ["type": "object", "description": "Attributes of the task this TaskStatus represents"],
            "progress": nullableString,
            "percentComplete": [
                "type": "integer", "format": "int32", "minimum": .integer(Int64(Int32.min)), "maximum": .integer(Int64(Int32.max)),
                "description": "Current percentage completion of the task this TaskStatus represents",
            ],
            "taskDefinitionSummary": Self.ref("schemas", "TaskDefinitionSummary"),
        ]
        let required = TaskProperty.allCases.filter { $0.isRequired && (!creating || !$0.isNullable) }.map { JSONValue.string($0.rawValue) }
        var schema: JSONValue = [
            "type": "object",
            "required": .array(required),
            "additionalProperties": false,
            "properties": properties,
        ]
        if creating {
            schema[member: "description"] = .string(
                """
                Addition of this bridge: a whole TaskStatus to create. Nullable properties may be left out (they \
                are then null); enum values are accepted in any letter case and stored in upper case; `modified` \
                is kept as sent. No value may nest deeper than \(configuration.limits.maxDepth) levels.
                """
            )
            schema[member: "x-bridge-addition"] = "Creating tasks."
        } else {
            schema[member: "description"] = "Details and current status of a specific task."
        }
        return schema
    }

    private static func ref(_ kind: String, _ name: String) -> JSONValue {
        ["$ref": .string("#/components/\(kind)/\(name)")]
    }
}

extension JSONValue {
    /// Member access that writes too: setting a member of a value that is not an object makes it one.
    fileprivate subscript(member key: String) -> JSONValue {
        get { self[key] ?? .null }
        set {
            var object = objectValue ?? JSONObject()
            object[key] = newValue
            self = .object(object)
        }
    }

    /// The object with its members sorted by name (status codes in order).
    fileprivate var sortedByKey: JSONValue {
        guard case .object(let object) = self else { return self }
        var sorted = JSONObject()
        for member in object.sorted(by: { $0.key < $1.key }) { sorted[member.key] = member.value }
        return .object(sorted)
    }
}
