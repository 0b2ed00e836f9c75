//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import Foundation
import HTTPAPI
import JSONPatch
import JWTKit
import Redis
import Testing

/// Authentication and authorisation, on both paths.
@Suite("Authentication and scopes", .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(2)))
struct AuthTests {
    /// A token case and the answer it must get: the status and (for 401) the reason.
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let token: @Sendable () async throws -> String?
        let status: Int
        let reason: String?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "no token", token: { nil }, status: 401, reason: "no bearer token"),
        Case(name: "malformed", token: { "Bearer not.a.jwt" }, status: 401, reason: "JWT is malformed"),
        Case(name: "not bearer", token: { "Basic dXNlcjpwYXNz" }, status: 401, reason: "the authorization is not a bearer token"),
        Case(
            name: "wrong signature",
            token: { "Bearer " + (try await Tokens.sign(secret: Array("another-secret-of-enough-length-000".utf8))) },
            status: 401,
            reason: "JWT signature is invalid"
        ),
        // An attacker's forgeries: no algorithm, no signature, another algorithm in the header than the key's.
        Case(name: "alg none", token: { "Bearer " + (try await Tokens.unsigned()) }, status: 401, reason: nil),
        Case(name: "stripped signature", token: { "Bearer " + (try await Tokens.stripped()) }, status: 401, reason: nil),
        Case(
            name: "HS384 in the header, signed with the HS256 key",
            token: { "Bearer " + (try await Tokens.sign(headerAlgorithm: "HS384")) },
            status: 401,
            reason: "JWT algorithm HS384 is not the key's (HS256)"
        ),
        Case(name: "no exp", token: { "Bearer " + (try await Tokens.sign(expires: nil)) }, status: 401, reason: "JWT has no expiry (exp)"),
        Case(name: "expired", token: { "Bearer " + (try await Tokens.sign(expires: -3600)) }, status: 401, reason: "JWT is expired"),
        Case(name: "not yet valid", token: { "Bearer " + (try await Tokens.sign(notBefore: 3600)) }, status: 401, reason: "JWT is not valid yet"),
        Case(
            name: "wrong issuer",
            token: { "Bearer " + (try await Tokens.sign(issuer: "https://evil.example")) },
            status: 401,
            reason: "JWT issuer is not \(Tokens.issuer)"
        ),
        Case(
            name: "wrong audience",
            token: { "Bearer " + (try await Tokens.sign(audience: "billing")) },
            status: 401,
            reason: "JWT audience does not include task-status"
        ),
        Case(
            name: "missing scope",
            token: { "Bearer " + (try await Tokens.sign(scope: .text("idn:task-management:read"))) },
            status: 403,
            reason: nil
        ),
        Case(name: "right scope as a string", token: { "Bearer " + (try await Tokens.sign()) }, status: 200, reason: nil),
        Case(
            name: "right scope as an array",
            token: { "Bearer " + (try await Tokens.sign(scope: .list(["idn:task-management:write"]))) },
            status: 200,
            reason: nil
        ),
        Case(name: "sp:scopes:all", token: { "Bearer " + (try await Tokens.sign(scope: .text("sp:scopes:all"))) }, status: 200, reason: nil),
        Case(name: "sub without client_id", token: { "Bearer " + (try await Tokens.sign(clientId: nil)) }, status: 200, reason: nil),
    ]

    private func check(_ reply: JSONValue, status: Int, body: JSONValue?, reason: String?) {
        #expect(reply["status"]?.int64Value == Int64(status))
        if status == 401, let reason { #expect(body == ["error": .string("JWT validation failed: \(reason)")]) }
        if status == 403 { #expect(body?["detailCode"] == "403 Forbidden") }
    }

    @Test("HTTP: each token gets its answer", arguments: cases)
    func http(_ testCase: Case) async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space, configure: { $0.auth = Tokens.configuration }) { bridge in
                let base = try #require(await bridge.baseURL())
                var headers = HTTPAPITests.experimental
                if let token = try await testCase.token() { headers["Authorization"] = token }
                let response = try await HTTP.request("PATCH", base + "/task-status/t1", headers: headers, body: Array("[]".utf8))
                #expect(response.status == testCase.status, "\(String(decoding: response.body, as: UTF8.self))")
                #expect(response.headers["content-type"] == "application/json")
                check(["status": .integer(Int64(response.status))], status: testCase.status, body: response.json, reason: testCase.reason)
            }
        }
    }

    @Test("stream: each entry's authorization gets its answer", arguments: cases)
    func stream(_ testCase: Case) async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space, configure: { $0.auth = Tokens.configuration }) { bridge in
                var extra: [(String, String)] = []
                if let token = try await testCase.token() { extra.append(("authorization", token)) }
                try await space.enqueue(task: "t1", patch: "[]", requestId: "r", extra: extra)
                let reply = try await space.reply(task: "t1", requestId: "r")
                check(reply, status: testCase.status, body: reply["body"], reason: testCase.reason)
                #expect(try await space.hash("t1")["_rev"] == (testCase.status == 200 ? "2" : "1"))
            }
        }
    }

    @Test("tokens without exp are accepted only where the setting allows them")
    func noExpiryAllowed() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            var configuration = Tokens.configuration
            configuration.requiresExpiry = false
            try await RunningBridge.with(space, configure: { $0.auth = configuration }) { bridge in
                let base = try #require(await bridge.baseURL())
                var headers = HTTPAPITests.experimental
                headers["Authorization"] = "Bearer " + (try await Tokens.sign(expires: nil))
                #expect(try await HTTP.request("PATCH", base + "/task-status/t1", headers: headers, body: Array("[]".utf8)).status == 200)
            }
        }
    }

    @Test("GET needs the read scope")
    func readScope() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space, configure: { $0.auth = Tokens.configuration }) { bridge in
                let base = try #require(await bridge.baseURL())
                let writeOnly = try await Tokens.sign(scope: .text("idn:task-management:write"))
                let reader = try await Tokens.sign(scope: .text("idn:task-management:read"))
                #expect(try await HTTP.request("GET", base + "/task-status/v1/t1", headers: ["Authorization": "Bearer \(writeOnly)"]).status == 403)
                #expect(try await HTTP.request("GET", base + "/task-status/v1/t1", headers: ["Authorization": "Bearer \(reader)"]).status == 200)
            }
        }
    }

    @Test("ES256 and RS256 public keys and a JWKS verify their tokens")
    func keyTypes() async throws {
        let ecKey = ES256PrivateKey()
        let signers = JWTKeyCollection()
        await signers.add(ecdsa: ecKey, kid: "ec-1")
        let claims = Tokens.Claims(
            exp: ExpirationClaim(value: Date().addingTimeInterval(600)),
            sub: SubjectClaim(value: "svc"),
            client_id: "svc",
            scope: .text("idn:task-management:write")
        )
        let token = try await signers.sign(claims, kid: "ec-1")
        for key in [AuthConfiguration.Key.publicKeyPEM(ecKey.publicKey.pemRepresentation), .jwks(Self.jwks(for: ecKey.publicKey, kid: "ec-1"))] {
            let authenticator = try await Authenticator(configuration: AuthConfiguration(keys: [key]))
            guard case .allowed(let caller) = await authenticator.authorize("Bearer \(token)", for: .write) else {
                Issue.record("the ES256 token was refused with \(key)")
                continue
            }
            #expect(caller.id == "svc")
        }
        let rsa = try Self.rsaKeyPair()
        if let rsa {
            let rsaSigners = JWTKeyCollection()
            await rsaSigners.add(rsa: try Insecure.RSA.PrivateKey(pem: rsa.privatePEM), digestAlgorithm: .sha256)
            let rsaToken = try await rsaSigners.sign(claims)
            let authenticator = try await Authenticator(configuration: AuthConfiguration(keys: [.publicKeyPEM(rsa.publicPEM)]))
            guard case .allowed = await authenticator.authorize("Bearer \(rsaToken)", for: .write) else {
                Issue.record("the RS256 token was refused")
                return
            }
        }
        await #expect(throws: (any Error).self) { try await Authenticator(configuration: AuthConfiguration(keys: [.publicKeyPEM("nonsense")])) }
    }

    static func jwks(for key: ES256PublicKey, kid: String) -> String {
        let parameters = key.parameters!
        return #"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"\#(kid)","x":"\#(parameters.x)","y":"\#(parameters.y)"}]}"#
    }

    /// An RSA key pair made with openssl (`nil` when openssl is missing).
    static func rsaKeyPair() throws -> (privatePEM: String, publicPEM: String)? {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rsa-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = dir.appendingPathComponent("key.pem").path
        let pub = dir.appendingPathComponent("pub.pem").path
        for arguments in [["genrsa", "-out", key, "2048"], ["rsa", "-in", key, "-pubout", "-out", pub]] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = arguments
            process.standardError = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return nil }
            while process.isRunning { usleep(10_000) }
            guard process.terminationStatus == 0 else { return nil }
        }
        return (try String(contentsOfFile: key, encoding: .utf8), try String(contentsOfFile: pub, encoding: .utf8))
    }
}
