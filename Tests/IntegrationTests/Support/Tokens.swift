//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import Foundation
import JWTKit

/// Tokens for the tests, signed as an identity provider would.
enum Tokens {
    static let secret = Array("a-test-secret-of-enough-length-1234".utf8)
    static let issuer = "https://tenant.example/oauth"
    static let audience = "task-status"

    struct Claims: JWTPayload {
        var exp: ExpirationClaim?
        var nbf: NotBeforeClaim?
        var iat: IssuedAtClaim?
        var iss: IssuerClaim?
        var aud: AudienceClaim?
        var sub: SubjectClaim?
        var client_id: String?
        var scope: ScopeValue?

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// `scope` as a string or as an array.
    enum ScopeValue: Codable {
        case text(String)
        case list([String])

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .text(let s): try container.encode(s)
            case .list(let l): try container.encode(l)
            }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .text(text)
            } else {
                self = .list(try container.decode([String].self))
            }
        }
    }

    /// The authentication settings matching `sign`.
    static var configuration: AuthConfiguration {
        AuthConfiguration(keys: [.hmacSecret(secret)], issuer: issuer, audience: audience)
    }

    /// A token valid for an hour with the write and read scopes, adjustable.
    static func sign(
        clientId: String? = "client-1",
        scope: ScopeValue? = .text("idn:task-management:write idn:task-management:read"),
        expires: TimeInterval? = 3600,
        notBefore: TimeInterval? = nil,
        issuer: String = Tokens.issuer,
        audience: String = Tokens.audience,
        secret: [UInt8] = Tokens.secret,
        headerAlgorithm: String? = nil
    ) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let now = Date()
        let claims = Claims(
            exp: expires.map { ExpirationClaim(value: now.addingTimeInterval($0)) },
            nbf: notBefore.map { NotBeforeClaim(value: now.addingTimeInterval($0)) },
            iat: IssuedAtClaim(value: now),
            iss: IssuerClaim(value: issuer),
            aud: AudienceClaim(value: [audience]),
            sub: SubjectClaim(value: "user-\(clientId ?? "none")"),
            client_id: clientId,
            scope: scope
        )
        var header = JWTHeader()
        // jwt-kit writes the key's algorithm unless the header names one: an attacker's header.
        header.alg = headerAlgorithm
        return try await keys.sign(claims, header: header)
    }

    /// A token with `"alg":"none"` and no signature, with otherwise valid claims.
    static func unsigned() async throws -> String {
        let signed = try await sign()
        let payload = signed.split(separator: ".")[1]
        let header = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString()
            .replacingOccurrences(of: "=", with: "").replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        return "\(header).\(payload)."
    }

    /// A valid token with its signature cut off.
    static func stripped() async throws -> String {
        let parts = try await sign().split(separator: ".")
        return "\(parts[0]).\(parts[1])."
    }
}
