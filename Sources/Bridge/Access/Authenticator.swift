//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import JSONPatch
import JWTKit
import Synchronization
public import TaskStatus

/// The caller behind a verified token.
public struct Caller: Sendable, Equatable {
    /// The token's `client_id`, else its `sub`: the identity rate limits count by.
    public var id: String
    public var scopes: Set<String>
}

/// What a request needs.
public enum Access: Sendable {
    case read
    case write
}

/// The outcome of checking a request's token.
public enum Authorization: Sendable {
    case allowed(Caller)
    /// Refused, with SailPoint's 401 or 403 answer.
    case denied(TaskResponse)
}

/// Verifies bearer JWTs (signature, `exp`, `nbf`, `iat` with leeway, optional `iss` and `aud`)
/// and checks scopes, answering SailPoint's 401 and 403 bodies. Verified tokens are remembered
/// until they expire, so that a producer sending many requests with one token pays for one
/// signature check.
public final class Authenticator: Sendable {
    private let keys: JWTKeyCollection
    public let configuration: AuthConfiguration
    private let verified = Mutex<[String: (caller: Caller, claims: TokenClaims)]>([:])
    private static let cacheLimit = 10_000

    /// Loads the keys; fails with a message naming the bad one.
    public init(configuration: AuthConfiguration) async throws {
        self.configuration = configuration
        keys = JWTKeyCollection()
        for key in configuration.keys {
            switch key {
            case .hmacSecret(let secret):
                // HS256 needs a key at least as long as its digest.
                guard secret.count >= 32 else { throw AuthSetupError("the HS256 secret must be at least 32 bytes, not \(secret.count)") }
                await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            case .publicKeyPEM(let pem):
                if let rsa = try? Insecure.RSA.PublicKey(pem: pem) {
                    await keys.add(rsa: rsa, digestAlgorithm: .sha256)
                } else if let ec = try? ES256PublicKey(pem: pem) {
                    await keys.add(ecdsa: ec)
                } else {
                    throw AuthSetupError("the public key is neither an RSA nor a P-256 key in PEM form")
                }
            case .jwks(let json):
                do {
                    try await keys.add(jwksJSON: json)
                } catch {
                    throw AuthSetupError("the JWKS does not load: \(error)")
                }
            }
        }
    }

    /// A key file that cannot be used.
    public struct AuthSetupError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Checks an `Authorization` value for `access`: the caller, or the 401/403 answer.
    public func authorize(_ authorization: String?, for access: Access) async -> Authorization {
        switch bearerToken(authorization) {
        case .failure(let denial):
            return .denied(denial.response)
        case .success(let token):
            if let known = verified.withLock({ $0[token] }) { return decide(token, known, access) }
            if let problem = await algorithmProblem(token) { return .denied(.error(401, problem)) }
            do {
                let claims = try await keys.verify(token, as: TokenClaims.self)
                guard let id = claims.client_id ?? claims.sub?.value else {
                    return .denied(.error(401, "the JWT has neither client_id nor sub"))
                }
                return decide(token, (Caller(id: id, scopes: claims.scopes), claims), access)
            } catch {
                return .denied(.error(401, Self.reason(error)))
            }
        }
    }

    /// ``authorize(_:for:)`` without waiting: `nil` when the token's signature has not been
    /// checked yet (call the async form then). Lets a batch check known tokens without hopping
    /// off its thread.
    public func authorizeKnown(_ authorization: String?, for access: Access) -> Authorization? {
        switch bearerToken(authorization) {
        case .failure(let denial):
            return .denied(denial.response)
        case .success(let token):
            guard let known = verified.withLock({ $0[token] }) else { return nil }
            return decide(token, known, access)
        }
    }

    private struct Denial: Error {
        let response: TaskResponse
    }

    private func bearerToken(_ authorization: String?) -> Result<String, Denial> {
        guard let authorization, !authorization.isEmpty else { return .failure(Denial(response: .error(401, "no bearer token"))) }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            return .failure(Denial(response: .error(401, "the authorization is not a bearer token")))
        }
        return .success(String(parts[1].trimmingCharacters(in: .whitespaces)))
    }

    private func decide(_ token: String, _ checked: (caller: Caller, claims: TokenClaims), _ access: Access) -> Authorization {
        if let problem = timeProblem(checked.claims) ?? issuerProblem(checked.claims) {
            verified.withLock { _ = $0.removeValue(forKey: token) }
            return .denied(.error(401, problem))
        }
        verified.withLock { cache in
            if cache[token] == nil {
                if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
                cache[token] = checked
            }
        }
        let needed = access == .write ? configuration.writeScopes : configuration.readScopes
        guard !checked.caller.scopes.isDisjoint(with: needed) else {
            let names = needed.sorted().joined(separator: " or ")
            return .denied(.error(403, "the token lacks the scope \(names)"))
        }
        return .allowed(checked.caller)
    }

    /// Holds the header's `alg` against the key that would verify the token: jwt-kit verifies
    /// with the key it finds (by `kid`, else the default one) whatever the header says, so a
    /// token whose header names another algorithm than its key's, or none, is refused here.
    private func algorithmProblem(_ token: String) async -> String? {
        guard let header = Self.header(of: token) else { return "JWT is malformed" }
        guard case .string(let algorithm)? = header["alg"] else { return "JWT names no algorithm" }
        if algorithm.lowercased() == "none" { return "JWT is not signed (alg none)" }
        let kid = header["kid"]?.stringValue.map { JWKIdentifier(string: $0) }
        guard let key = try? await keys.getKey(for: kid, alg: algorithm) else {
            return kid == nil ? "JWT algorithm \(algorithm) has no key" : "JWT key id is unknown"
        }
        guard key.name == algorithm else { return "JWT algorithm \(algorithm) is not the key's (\(key.name))" }
        return nil
    }

    /// The decoded JOSE header of a compact JWT, without checking anything else.
    static func header(of token: String) -> JSONValue? {
        guard let end = token.firstIndex(of: ".") else { return nil }
        var text = token[..<end].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text.append("=") }
        guard let data = Data(base64Encoded: text), data.count <= 8192 else { return nil }
        return try? JSONParser(limits: .init(maxDepth: 8, maxBytes: 8192)).parse([UInt8](data))
    }

    private func timeProblem(_ claims: TokenClaims) -> String? {
        if claims.exp == nil, configuration.requiresExpiry { return "JWT has no expiry (exp)" }
        let now = Date()
        let leeway = Double(configuration.leeway.components.seconds)
        if let exp = claims.exp?.value, now.timeIntervalSince(exp) > leeway { return "JWT is expired" }
        if let nbf = claims.nbf?.value, nbf.timeIntervalSince(now) > leeway { return "JWT is not valid yet" }
        if let iat = claims.iat?.value, iat.timeIntervalSince(now) > leeway { return "JWT was issued in the future" }
        return nil
    }

    private func issuerProblem(_ claims: TokenClaims) -> String? {
        if let issuer = configuration.issuer, claims.iss?.value != issuer { return "JWT issuer is not \(issuer)" }
        if let audience = configuration.audience, !(claims.aud?.value.contains(audience) ?? false) {
            return "JWT audience does not include \(audience)"
        }
        return nil
    }

    private static func reason(_ error: any Error) -> String {
        if let jwt = error as? JWTError {
            switch jwt.errorType {
            case .signatureVerificationFailed: return "JWT signature is invalid"
            case .malformedToken: return "JWT is malformed"
            case .unknownKID: return "JWT key id is unknown"
            case .missingKIDHeader: return "JWT has no key id"
            default: break
            }
            return "JWT is invalid (\(jwt.reason ?? jwt.errorType.description))"
        }
        if error is DecodingError { return "JWT claims are malformed" }
        return "JWT is invalid"
    }
}

/// The claims the bridge reads. Times, issuer and audience are checked by the ``Authenticator``
/// (with leeway and its configuration), not here.
struct TokenClaims: JWTPayload {
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iat: IssuedAtClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?
    var sub: SubjectClaim?
    var client_id: String?
    var scope: ScopeClaim?

    var scopes: Set<String> { scope?.values ?? [] }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// `scope` as SailPoint sends it: a space-separated string, or an array of strings.
struct ScopeClaim: Codable, Sendable {
    var values: Set<String>

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            values = Set(text.split(separator: " ").map(String.init))
        } else {
            values = Set(try container.decode([String].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(values.sorted())
    }
}
