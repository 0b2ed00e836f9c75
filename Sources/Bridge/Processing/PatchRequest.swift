//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import JSONPatch
public import TaskStatus

/// One update request, from a stream entry or an HTTP PATCH: the same fields either way.
public struct PatchRequest: Sendable {
    /// The task id (the path parameter); empty when the entry had none.
    public var taskId: String
    /// Correlation and idempotency key; a stream entry's id when the producer gave none.
    public var requestId: String
    /// The Pub/Sub channel for the reply.
    public var replyTo: String?
    /// The `_rev` the caller expects (`if-match`).
    public var ifMatch: Int64?
    /// The `authorization` value (`Bearer <JWT>`).
    public var authorization: String?
    /// The decoded patch; `nil` when the request was rejected before it.
    public var patch: JSONPatch?
    /// The patch's JSON text as the caller sent it, for notifications.
    public var patchJSON: [UInt8]
    /// Set when the request is refused before its task is read (malformed entry, bad patch).
    public var rejection: TaskResponse?
    /// The stream entry this request came from.
    public var entryId: String?
    /// Whether the reply is stored (for repeats): always for the stream; for HTTP only when the
    /// caller gave an `X-Request-Id` to repeat it with.
    public var storesReply: Bool
    /// Who the request counts against for rate limits (`nil`: not limited).
    public var rateLimitKey: String?
    /// For a creation (the entry's `create` field, `POST /task-status`): the task to store, validated,
    /// at revision 1. `nil` for an update.
    public var creation: TaskRecord?

    public init(
        taskId: String,
        requestId: String,
        replyTo: String? = nil,
        ifMatch: Int64? = nil,
        authorization: String? = nil,
        patch: JSONPatch?,
        patchJSON: [UInt8],
        rejection: TaskResponse? = nil,
        entryId: String? = nil,
        storesReply: Bool = true,
        rateLimitKey: String? = nil
    ) {
        self.taskId = taskId
        self.requestId = requestId
        self.replyTo = replyTo
        self.ifMatch = ifMatch
        self.authorization = authorization
        self.patch = patch
        self.patchJSON = patchJSON
        self.rejection = rejection
        self.entryId = entryId
        self.storesReply = storesReply
        self.rateLimitKey = rateLimitKey
    }

    /// Whether the task id can name a task. An id that starts with `}` would close the hash tag
    /// of `<prefix>:task:{<id>}` at once: Redis would hash each of the task's keys whole, putting
    /// them in different Redis Cluster slots, where the commit script cannot reach them together.
    public static func isValidTaskId(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 256 && id.utf8.first != UInt8(ascii: "}")
            && !id.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    /// What ``isValidTaskId(_:)`` asks, as the 400 and the clients say it.
    public static let taskIdRule = "the task id must be 1 to 256 bytes without control characters, and must not start with }"

}

/// Turns request parts into a ``PatchRequest``, refusing bad ones with the status and cause the
/// HTTP API would give.
public struct PatchRequestDecoder: Sendable {
    public var limits: RequestLimits
    public var requireExperimentalFlag: Bool

    public init(limits: RequestLimits, requireExperimentalFlag: Bool) {
        self.limits = limits
        self.requireExperimentalFlag = requireExperimentalFlag
    }

    /// Decodes a stream entry. Field names are matched case-insensitively; unknown ones are ignored.
    public func decode(entryId: String, fields: [(field: ArraySlice<UInt8>, value: ArraySlice<UInt8>)]) -> PatchRequest {
        var taskId: ArraySlice<UInt8>?
        var patch: ArraySlice<UInt8>?
        var requestId: ArraySlice<UInt8>?
        var replyTo: ArraySlice<UInt8>?
        var authorization: ArraySlice<UInt8>?
        var experimental: ArraySlice<UInt8>?
        var contentType: ArraySlice<UInt8>?
        var ifMatch: ArraySlice<UInt8>?
        var create: ArraySlice<UInt8>?
        for (field, value) in fields {
            switch EntryField(field) {
            case .id: taskId = value
            case .patch: patch = value
            case .requestId: requestId = value
            case .replyTo: replyTo = value
            case .authorization: authorization = value
            case .experimental: experimental = value
            case .contentType: contentType = value
            case .ifMatch: ifMatch = value
            case .create: create = value
            case nil: break
            }
        }
        func text(_ bytes: ArraySlice<UInt8>?) -> String? {
            guard let bytes, !bytes.isEmpty else { return nil }
            return Self.utf8String(bytes)
        }
        return decode(
            taskId: text(taskId),
            taskIdGiven: taskId != nil,
            requestId: text(requestId),
            entryId: entryId,
            replyTo: text(replyTo),
            authorization: text(authorization),
            experimental: text(experimental),
            contentType: text(contentType),
            ifMatch: text(ifMatch),
            patch: patch.map { Array($0) },
            create: create.map { Array($0) }
        )
    }

    /// Decodes the parts of a request (stream fields or HTTP headers and body).
    public func decode(
        taskId: String?,
        taskIdGiven: Bool = true,
        requestId: String?,
        entryId: String?,
        replyTo: String?,
        authorization: String?,
        experimental: String?,
        contentType: String?,
        ifMatch: String?,
        patch: [UInt8]?,
        create: [UInt8]? = nil
    ) -> PatchRequest {
        let id = taskId ?? ""
        var request = PatchRequest(
            taskId: id,
            requestId: entryId ?? "",
            replyTo: replyTo,
            authorization: authorization,
            patch: nil,
            patchJSON: [],
            entryId: entryId
        )
        func reject(_ status: Int, _ cause: String) -> PatchRequest {
            var rejected = request
            rejected.rejection = .error(status, cause)
            return rejected
        }
        if let requestId {
            guard requestId.utf8.count <= 256 else { return reject(400, "request-id is longer than 256 bytes") }
            request.requestId = requestId
        }
        if request.requestId.isEmpty { request.requestId = ErrorEnvelope.trackingId() }
        if let create {
            guard patch == nil else { return reject(400, "the request has both a patch and a task to create (fields patch and create): send one") }
            return decodeCreation(create, taskId: taskId, experimental: experimental, contentType: contentType, into: request)
        }
        guard let taskId else {
            return reject(400, taskIdGiven ? "the task id is empty or not UTF-8" : "the request has no task id (field id)")
        }
        guard PatchRequest.isValidTaskId(taskId) else {
            return reject(400, PatchRequest.taskIdRule)
        }
        guard let patch else { return reject(400, "the request has no patch (field patch)") }
        if requireExperimentalFlag, experimental?.lowercased() != "true" {
            return reject(400, "x-sailpoint-experimental must be true for this experimental API")
        }
        if let contentType {
            let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces.lowercased() } ?? ""
            guard mediaType == "application/json-patch+json" || mediaType == "application/json" else {
                return reject(415, "content-type \(contentType) is not supported; send application/json-patch+json")
            }
        }
        if let ifMatch {
            guard let rev = Self.revision(fromETag: ifMatch) else {
                return reject(400, "if-match must be the task's revision (a number, or an ETag such as \"8\"), not \(ifMatch)")
            }
            request.ifMatch = rev
        }
        guard patch.count <= limits.maxPatchBytes else {
            return reject(413, "the patch is \(patch.count) bytes, over the limit of \(limits.maxPatchBytes)")
        }
        let parser = JSONParser(limits: .init(maxDepth: limits.maxDepth, maxBytes: limits.maxPatchBytes))
        if let patched = JSONPatch(readingPlain: patch, parser: parser), patched.operations.count <= limits.maxOperations {
            request.patch = patched
            request.patchJSON = patch
            return request
        }
        let value: JSONValue
        do {
            value = try parser.parse(patch)
        } catch {
            return reject(400, "the patch is not valid JSON: \(error)")
        }
        if case .array(let operations) = value, operations.count > limits.maxOperations {
            return reject(400, "the patch has \(operations.count) operations, over the limit of \(limits.maxOperations)")
        }
        do {
            request.patch = try JSONPatch(value)
        } catch {
            return reject(400, error.description)
        }
        // Notifications carry the patch as it was sent: valid JSON, no need to write it again.
        request.patchJSON = patch
        return request
    }

    /// Decodes a creation: the whole TaskStatus, validated as an update's result is, stored at
    /// revision 1. Its id is the document's; a task id given besides (the entry's `id`) must match it.
    private func decodeCreation(
        _ document: [UInt8],
        taskId: String?,
        experimental: String?,
        contentType: String?,
        into request: PatchRequest
    )
        -> PatchRequest
    {
        var request = request
        func reject(_ status: Int, _ cause: String) -> PatchRequest {
            request.rejection = .error(status, cause)
            return request
        }
        if requireExperimentalFlag, experimental?.lowercased() != "true" {
            return reject(400, "x-sailpoint-experimental must be true for this experimental API")
        }
        if let contentType {
            let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces.lowercased() } ?? ""
            guard mediaType == "application/json" else {
                return reject(415, "content-type \(contentType) is not supported for a task to create; send application/json")
            }
        }
        guard document.count <= limits.maxPatchBytes else {
            return reject(413, "the task is \(document.count) bytes, over the limit of \(limits.maxPatchBytes)")
        }
        let value: JSONValue
        do {
            value = try JSONParser(limits: .init(maxDepth: limits.maxDepth, maxBytes: limits.maxPatchBytes)).parse(document)
        } catch {
            return reject(400, "the task to create is not valid JSON: \(error)")
        }
        // The reply of a refused document is stored under the id it names, where its sender looks.
        if taskId == nil, let named = value["id"]?.stringValue, PatchRequest.isValidTaskId(named) { request.taskId = named }
        let canonical: JSONValue
        do {
            canonical = try TaskStatusSchema.validate(value)
        } catch {
            return reject(400, "the task to create is not a valid TaskStatus: \(error)")
        }
        let id = canonical["id"]?.stringValue ?? ""
        if let taskId, taskId != id {
            return reject(400, "the task id \(taskId) is not the document's id \(id)")
        }
        request.taskId = id
        guard PatchRequest.isValidTaskId(id) else { return reject(400, PatchRequest.taskIdRule) }
        let record = TaskRecord(rev: 1, document: canonical)
        request.creation = record
        // Announced as the one operation that makes the task: an add of the whole document.
        request.patchJSON = Array(#"[{"op":"add","path":"","value":"#.utf8) + record.json + Array("}]".utf8)
        return request
    }

    /// The bytes as text when they are UTF-8. Field values are nearly always ASCII, which needs no
    /// validation beyond the high bit.
    static func utf8String(_ bytes: some Collection<UInt8>) -> String? {
        var high: UInt8 = 0
        for b in bytes { high |= b }
        if high < 0x80 { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Reads a revision from `8`, `"8"` or `W/"8"`.
    public static func revision(fromETag text: String) -> Int64? {
        var t = Substring(text).trimmingSpaces
        if t.hasPrefix("W/") { t = t.dropFirst(2) }
        if t.hasPrefix("\""), t.hasSuffix("\""), t.count >= 2 { t = t.dropFirst().dropLast() }
        guard !t.isEmpty, t.allSatisfy(\.isASCIIDigit), let rev = Int64(t) else { return nil }
        return rev
    }
}

/// The stream entry fields the contract names.
enum EntryField: String, CaseIterable {
    case id
    case patch
    case requestId = "request-id"
    case replyTo = "reply-to"
    case authorization
    case experimental = "x-sailpoint-experimental"
    case contentType = "content-type"
    case ifMatch = "if-match"
    case create

    private static let names: [(EntryField, [UInt8])] = allCases.map { ($0, Array($0.rawValue.utf8)) }

    /// The field a name stands for, compared without regard to ASCII case, without building a
    /// string. The names hold only lowercase letters and dashes: `| 0x20` turns only a letter's
    /// capital into it, but it also turns a carriage return into `-`, so a dash must match itself.
    init?(_ field: ArraySlice<UInt8>) {
        for (candidate, name) in Self.names where name.count == field.count {
            var same = true
            for (i, byte) in zip(name.indices, field) where byte | 0x20 != name[i] || (name[i] == UInt8(ascii: "-") && byte != name[i]) {
                same = false
                break
            }
            if same {
                self = candidate
                return
            }
        }
        return nil
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
