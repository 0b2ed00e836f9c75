//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch

/// The text of Server-Sent Events (the WHATWG `text/event-stream` format): what the watch routes write.
enum ServerSentEvents {
    /// How long a browser waits before it reconnects, in milliseconds.
    static let retryMilliseconds = 2000

    /// What every stream starts with: the reconnection delay.
    static let preamble = Array("retry: \(retryMilliseconds)\n\n".utf8)

    /// A comment: keeps proxies from dropping a quiet connection.
    static let heartbeat = Array(": keep-alive\n\n".utf8)

    /// Appends one event: its id, and its data, one `data:` line per line of it (a patch sent
    /// pretty-printed keeps its line breaks in the change feed).
    static func append(_ data: [UInt8], id: String, event: String? = nil, to out: inout [UInt8]) {
        if let event { out += Array("event: \(event)\n".utf8) }
        out += Array("id: \(id)\n".utf8)
        var start = data.startIndex
        for i in data.indices where data[i] == UInt8(ascii: "\n") || data[i] == UInt8(ascii: "\r") {
            out += Array("data: ".utf8)
            out += data[start..<i]
            out.append(UInt8(ascii: "\n"))
            start = i + 1
        }
        out += Array("data: ".utf8)
        out += data[start...]
        out += Array("\n\n".utf8)
    }

    /// The event that tells a client to list again, with the reason.
    static func reset(_ reason: String) -> [UInt8] {
        let data = (["reason": .string(reason)] as JSONValue).serialized()
        return Array("event: reset\ndata: ".utf8) + data + Array("\n\n".utf8)
    }
}
