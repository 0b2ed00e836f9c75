//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// One reply from Redis (RESP2), copied out of hiredis.
public enum RedisReply: Sendable, Equatable {
    case null
    /// A simple string such as `OK`.
    case status(String)
    /// An error reply; in a pipeline it is the answer to one command, not a failure of the others.
    case error(String)
    case integer(Int64)
    /// A bulk string, binary-safe.
    case bulk([UInt8])
    case array([RedisReply])

    /// The bytes of a bulk string or status.
    public var bytes: [UInt8]? {
        switch self {
        case .bulk(let b): return b
        case .status(let s): return Array(s.utf8)
        default: return nil
        }
    }

    /// A bulk string or status as text (invalid UTF-8 is repaired).
    public var string: String? {
        switch self {
        case .bulk(let b): return String(decoding: b, as: UTF8.self)
        case .status(let s): return s
        default: return nil
        }
    }

    /// An integer, or a bulk string holding a decimal integer.
    public var int: Int64? {
        switch self {
        case .integer(let i): return i
        case .bulk(let b): return Int64(String(decoding: b, as: UTF8.self))
        default: return nil
        }
    }

    public var array: [RedisReply]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var isNull: Bool { self == .null }

    /// The reply, or the server's error as a thrown ``RedisError``.
    public func get() throws(RedisError) -> RedisReply {
        if case .error(let message) = self { throw RedisError(code: .serverError, message: message) }
        return self
    }

    /// A flat array of name/value pairs (an `XINFO` record, say) as a dictionary by name.
    public var map: [String: RedisReply] {
        var result: [String: RedisReply] = [:]
        guard case .array(let elements) = self else { return result }
        var k = 0
        while k + 1 < elements.count {
            if let name = elements[k].string { result[name] = elements[k + 1] }
            k += 2
        }
        return result
    }

    /// A flat array of field/value pairs (`HGETALL`, stream entry fields) as pairs.
    public var pairs: [(field: [UInt8], value: [UInt8])]? {
        guard case .array(let elements) = self, elements.count % 2 == 0 else { return nil }
        var result: [(field: [UInt8], value: [UInt8])] = []
        result.reserveCapacity(elements.count / 2)
        var i = 0
        while i < elements.count {
            guard let field = elements[i].bytes, let value = elements[i + 1].bytes else { return nil }
            result.append((field, value))
            i += 2
        }
        return result
    }
}
