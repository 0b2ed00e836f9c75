//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch

/// What the HTTP API answers a request, and what a stream reply carries: status, headers, body.
public struct TaskResponse: Sendable, Equatable {
    public var status: Int
    /// Response headers that matter to the caller (`Retry-After`, `ETag`).
    public var headers: [(name: String, value: String)]
    /// The JSON body: the TaskStatus on 200, an error envelope otherwise.
    public var body: [UInt8]
    /// The task's revision after the request, when known.
    public var rev: Int64?

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8], rev: Int64? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.rev = rev
    }

    public static func == (lhs: TaskResponse, rhs: TaskResponse) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body && lhs.rev == rhs.rev
            && lhs.headers.map(\.name) == rhs.headers.map(\.name) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }

    /// An error answer with SailPoint's envelope.
    public static func error(_ status: Int, _ cause: String, headers: [(name: String, value: String)] = [], rev: Int64? = nil) -> TaskResponse {
        TaskResponse(status: status, headers: headers, body: ErrorEnvelope.body(status: status, cause: cause), rev: rev)
    }

    /// The stream reply: `{"requestId","taskId","status","rev","headers","body"}`.
    public func replyJSON(requestId: String, taskId: String) -> [UInt8] {
        var out = replyHead(requestId: requestId, taskId: taskId)
        out.reserveCapacity(out.count + body.count + 1)
        out.append(contentsOf: body)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The stream reply up to its body: the reply is this, the body, and `}`. Kept apart so that
    /// the body, the bulk of it, is written once wherever the reply goes.
    public func replyHead(requestId: String, taskId: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(requestId.utf8.count + taskId.utf8.count + 96)
        out.append(contentsOf: #"{"requestId":"#.utf8)
        JSONWriter.writeString(requestId, to: &out)
        out.append(contentsOf: #","taskId":"#.utf8)
        JSONWriter.writeString(taskId, to: &out)
        out.append(contentsOf: #","status":"#.utf8)
        JSONWriter.writeInteger(Int64(status), to: &out)
        if let rev {
            out.append(contentsOf: #","rev":"#.utf8)
            JSONWriter.writeInteger(rev, to: &out)
        }
        out.append(contentsOf: #","headers":{"#.utf8)
        for (i, header) in headers.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.writeString(header.name, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONWriter.writeString(header.value, to: &out)
        }
        out.append(contentsOf: #"},"body":"#.utf8)
        return out
    }

    /// The reply as it is stored: a success without its body (the task, which may be large, is in
    /// its hash), so that a task's stored replies do not each hold a copy of it; any other answer
    /// whole, as it is published.
    public func storedReplyJSON(requestId: String, taskId: String) -> [UInt8] {
        guard Self.isSuccess(status) else { return replyJSON(requestId: requestId, taskId: taskId) }
        var out = replyHead(requestId: requestId, taskId: taskId)
        out.removeLast(Self.bodyKey.count)
        out.append(UInt8(ascii: "}"))
        return out
    }

    private static let bodyKey = Array(#","body":"#.utf8)

    /// Whether `status` answers a TaskStatus the request wrote: 200 (updated) or 201 (created).
    public static func isSuccess(_ status: Int) -> Bool { status == 200 || status == 201 }

}

/// A reply read back from where it is stored (see ``TaskResponse/storedReplyJSON(requestId:taskId:)``).
public struct StoredReply: Sendable {
    public var status: Int
    public var rev: Int64?
    public var headers: [(name: String, value: String)]
    /// The body; `nil` for a success, stored without its task.
    public var body: [UInt8]?

    /// Reads a stored reply; `nil` for text that is not one.
    public init?(json bytes: [UInt8]) {
        // A reply this program stored: its body may nest as deep as the request limits allowed.
        guard let reply = try? JSONParser.accepted.parse(bytes), let status = reply["status"]?.int64Value else { return nil }
        let body = reply["body"]
        guard body != nil || TaskResponse.isSuccess(Int(status)) else { return nil }
        var headers: [(name: String, value: String)] = []
        if case .object(let object)? = reply["headers"] {
            for member in object { headers.append((member.key, member.value.stringValue ?? member.value.jsonText)) }
        }
        self.status = Int(status)
        self.rev = reply["rev"]?.int64Value
        self.headers = headers
        self.body = body?.serialized()
    }

    /// Whether this is a success stored without its task: answering it again needs the task.
    public var keepsNoTask: Bool { TaskResponse.isSuccess(status) && body == nil }

    /// The answer as the body it was stored with; `nil` for a success stored without its task.
    public var response: TaskResponse? {
        body.map { TaskResponse(status: status, headers: headers, body: $0, rev: rev) }
    }
}

/// The fan-out payload of a successful update, on Pub/Sub and in the change feed:
/// `{"id","rev","requestId","patch","summary"}`, and `"task"` (the whole TaskStatus) when it is
/// small. What changed and the task's small properties, not a copy of a large document: a task
/// that logs thousands of messages would otherwise put a copy of itself in every entry.
public enum UpdateNotification {
    /// The notification, with `summary` and `task` only when given.
    public static func json(taskId: String, rev: Int64, requestId: String, patch: [UInt8], summary: [UInt8]?, task: [UInt8]?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(patch.count + (summary?.count ?? 0) + (task?.count ?? 0) + taskId.utf8.count + requestId.utf8.count + 80)
        out.append(contentsOf: #"{"id":"#.utf8)
        JSONWriter.writeString(taskId, to: &out)
        out.append(contentsOf: #","rev":"#.utf8)
        JSONWriter.writeInteger(rev, to: &out)
        out.append(contentsOf: #","requestId":"#.utf8)
        JSONWriter.writeString(requestId, to: &out)
        out.append(contentsOf: #","patch":"#.utf8)
        out.append(contentsOf: patch)
        if let summary {
            out.append(contentsOf: #","summary":"#.utf8)
            out.append(contentsOf: summary)
        }
        if let task {
            out.append(contentsOf: #","task":"#.utf8)
            out.append(contentsOf: task)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}

/// SailPoint's error bodies.
public enum ErrorEnvelope {
    /// The `detailCode` and message text of each status.
    public static func detail(for status: Int) -> (code: String, text: String) {
        switch status {
        case 400: return ("400.1 Bad Request Content", "The request was syntactically correct but its content is semantically invalid.")
        case 403: return ("403 Forbidden", "The server understood the request but refuses to authorize it.")
        case 404: return ("404 Not found", "The server did not find a current representation for the target resource.")
        case 409: return ("409 Conflict", "The request conflicts with the current state of the target resource.")
        case 405: return ("405 Method Not Allowed", "The target resource does not support the request's method; see the Allow header.")
        case 408: return ("408 Request Timeout", "The server did not receive a complete request in the time it was prepared to wait.")
        case 412: return ("412 Precondition Failed", "One or more conditions given in the request header fields evaluated to false.")
        case 413: return ("413 Payload Too Large", "The request content is larger than the server is willing to process.")
        case 415: return ("415 Unsupported Media Type", "The request's media type is not supported for this resource.")
        case 431: return ("431 Request Header Fields Too Large", "The request's header fields are larger than the server is willing to process.")
        case 500: return ("500.0 Internal Fault", "An internal fault occurred.")
        case 503: return ("503 Service Unavailable", "The server cannot handle the request for now; retry after the time given in Retry-After.")
        default: return ("\(status)", "The request failed.")
        }
    }

    /// The body for an error status: the envelope, or the 401 and 429 forms SailPoint uses.
    public static func body(status: Int, cause: String) -> [UInt8] {
        switch status {
        case 401:
            var out = Array(#"{"error":"#.utf8)
            JSONWriter.writeString("JWT validation failed: \(cause)", to: &out)
            out.append(UInt8(ascii: "}"))
            return out
        case 429:
            return Array(#"{"message":" Rate Limit Exceeded "}"#.utf8)
        default:
            let (code, text) = detail(for: status)
            func message(_ text: String) -> JSONValue { ["locale": "en-US", "localeOrigin": "DEFAULT", "text": .string(text)] }
            let envelope: JSONValue = [
                "detailCode": .string(code), "trackingId": .string(trackingId()), "messages": [message(text)], "causes": [message(cause)],
            ]
            return envelope.serialized()
        }
    }

    /// A fresh 32-hex-digit tracking id.
    public static func trackingId() -> String {
        var generator = SystemRandomNumberGenerator()
        func hex(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        return hex(generator.next()) + hex(generator.next())
    }
}
