//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import JSONPatch
import Redis
import Testing

@Suite("Bad input", .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(2)))
struct BadInputTests {
    static let wrongFields: [(String, [(String, [UInt8])], Int)] = {
        func b(_ s: String) -> [UInt8] { Array(s.utf8) }
        let ok = ("x-sailpoint-experimental", b("true"))
        return [
            ("random bytes as the patch", [("id", b("t1")), ("patch", [0xFF, 0x00, 0x9C, 0x22, 0x7B]), ok], 400),
            ("random bytes as the id", [("id", [0xC3, 0x28, 0xFF]), ("patch", b("[]")), ok], 400),
            ("a number as the patch", [("id", b("t1")), ("patch", b("5")), ok], 400),
            ("a string as the patch", [("id", b("t1")), ("patch", b("\"[]\"")), ok], 400),
            ("null as the patch", [("id", b("t1")), ("patch", b("null")), ok], 400),
            ("an empty patch field", [("id", b("t1")), ("patch", []), ok], 400),
            ("a number as op", [("id", b("t1")), ("patch", b(#"[{"op":5,"path":"/a"}]"#)), ok], 400),
            ("a number as path", [("id", b("t1")), ("patch", b(#"[{"op":"add","path":5,"value":1}]"#)), ok], 400),
            ("an operation that is an array", [("id", b("t1")), ("patch", b("[[]]")), ok], 400),
            ("a wrong type for a property", [("id", b("t1")), ("patch", b(#"[{"op":"replace","path":"/percentComplete","value":"5"}]"#)), ok], 400),
            ("a bad date-time", [("id", b("t1")), ("patch", b(#"[{"op":"replace","path":"/modified","value":"yesterday"}]"#)), ok], 400),
            ("a message without its type", [("id", b("t1")), ("patch", b(#"[{"op":"add","path":"/messages/-","value":{"key":"k"}}]"#)), ok], 400),
            ("words as if-match", [("id", b("t1")), ("patch", b("[]")), ("if-match", b("latest")), ok], 400),
            ("yes as the experimental flag", [("id", b("t1")), ("patch", b("[]")), ("x-sailpoint-experimental", b("yes"))], 400),
            ("a 300-byte task id", [("id", Array(repeating: 0x61, count: 300)), ("patch", b("[]")), ok], 400),
            ("a control character in the id", [("id", b("t\u{01}")), ("patch", b("[]")), ok], 400),
            ("an id starting with } (its keys would span Cluster slots)", [("id", b("}t1")), ("patch", b("[]")), ok], 400),
            ("a 2 MiB patch", [("id", b("t1")), ("patch", Array(repeating: 0x20, count: 2 << 20) + b("[]")), ok], 413),
            (
                "JSON nested 100 deep", [("id", b("t1")), ("patch", b(String(repeating: "[", count: 100) + String(repeating: "]", count: 100))), ok],
                400
            ),
            (
                "2000 operations",
                [
                    ("id", b("t1")),
                    ("patch", b("[" + Array(repeating: #"{"op":"test","path":"/id","value":"t1"}"#, count: 2000).joined(separator: ",") + "]")), ok,
                ],
                400
            ),
        ]
    }()

    @Test("every bad entry gets its error reply and the bridge keeps serving", arguments: wrongFields)
    func badEntry(name: String, fields: [(String, [UInt8])], status: Int) async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                var arguments: [any RedisArgument] = [space.keys.requests, "*", "request-id", "bad"]
                for (field, value) in fields {
                    arguments.append(field)
                    arguments.append(value)
                }
                try await space.redis.execute(RedisCommand("XADD", arguments: arguments))
                // The reply is stored under the id as given when it is text, under an empty id otherwise.
                let taskId = fields.first { $0.0 == "id" }.flatMap { String(validating: $0.1, as: UTF8.self) } ?? ""
                let reply = try await space.reply(task: taskId, requestId: "bad")
                #expect(reply["status"]?.int64Value == Int64(status), "\(name): \(reply)")
                #expect(try await space.hash("t1")["_rev"] == "1")
                try await space.enqueue(task: "t1", patch: "[]", requestId: "good")
                #expect(try await space.reply(task: "t1", requestId: "good")["status"] == 200)
            }
        }
    }

    @Test("a burst of random entries is answered entry by entry")
    func randomBurst() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                var rng = SystemRandomNumberGenerator()
                for k in 0..<200 {
                    var arguments: [any RedisArgument] = [space.keys.requests, "*", "request-id", "n\(k)", "id", "t1"]
                    for _ in 0..<Int.random(in: 1...4, using: &rng) {
                        let name = ["patch", "x-sailpoint-experimental", "if-match", "content-type", "junk"].randomElement(using: &rng)!
                        arguments.append(name)
                        arguments.append((0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
                    }
                    try await space.redis.execute(RedisCommand("XADD", arguments: arguments))
                }
                for k in 0..<200 {
                    let status = try await space.reply(task: "t1", requestId: "n\(k)")["status"]?.int64Value ?? 0
                    #expect([400, 413, 415].contains(status))
                }
                try await space.enqueue(task: "t1", patch: "[]", requestId: "good")
                #expect(try await space.reply(task: "t1", requestId: "good")["status"] == 200)
            }
        }
    }
}
