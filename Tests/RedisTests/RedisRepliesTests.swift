//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Redis
import Testing

@Suite("Replies read from RESP text, and which errors are Redis's state for now")
struct RedisRepliesTests {
    @Test("RESP text parses as a connection would read it: nested arrays, nulls, errors, integers")
    func parsing() throws {
        let replies = try RedisReplies(parsing: Array("+OK\r\n*3\r\n:1\r\n$3\r\nabc\r\n*2\r\n$-1\r\n-OOM full\r\n".utf8))
        #expect(replies.count == 2)
        #expect(replies[0].reply == .status("OK"))
        #expect(replies[1].reply == .array([.integer(1), .bulk(Array("abc".utf8)), .array([.null, .error("OOM full")])]))
    }

    @Test("malformed text is an error, incomplete text yields the complete replies")
    func malformed() throws {
        #expect(throws: RedisError.self) { try RedisReplies(parsing: Array("?what\r\n".utf8)) }
        #expect(try RedisReplies(parsing: Array("+OK\r\n$5\r\nab".utf8)).count == 1)
    }

    @Test(
        "refusals for now are transient; a command's own fault is not",
        arguments: [
            ("OOM command not allowed when used memory > 'maxmemory'.", true),
            ("BUSY Redis is busy running a script.", true),
            ("LOADING Redis is loading the dataset in memory", true),
            ("READONLY You can't write against a read only replica.", true),
            ("MASTERDOWN Link with MASTER is down", true),
            ("NOREPLICAS Not enough good replicas to write.", true),
            ("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.", true),
            ("TRYAGAIN Multiple keys request during rehashing of slot", true),
            ("CLUSTERDOWN The cluster is down", true),
            ("NOSCRIPT No matching script.", true),
            ("UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)", true),
            ("EXECABORT Transaction discarded because of previous errors.", true),
            ("WRONGTYPE Operation against a key holding the wrong kind of value", false),
            ("ERR unknown command", false),
            ("NOGROUP No such key", false),
            ("OOMPH not a refusal", false),
        ]
    )
    func transient(message: String, expected: Bool) {
        #expect(RedisError.isTransient(serverError: message) == expected)
        #expect(RedisError(code: .serverError, message: message).isTransient == expected)
    }

    @Test("a failed connection is transient whatever it says")
    func connections() {
        #expect(RedisError(code: .connectionLost, message: "gone").isTransient)
        #expect(RedisError(code: .timedOut, message: "slow").isTransient)
        #expect(!RedisError(code: .invalidConfiguration, message: "bad url").isTransient)
        #expect(RedisError(code: .timedOut, message: "slow").kindLabel == "timeout")
        #expect(RedisError(code: .serverError, message: "OOM x").kindLabel == "OOM")
    }
}
