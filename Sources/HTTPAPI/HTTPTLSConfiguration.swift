//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import NIOCore
import NIOSSL

/// HTTPS for the API, for deployments with no proxy in front to end TLS: a certificate chain and
/// its private key, read and checked at start (a bad file stops the start, not the first client).
public struct HTTPTLSConfiguration: Sendable {
    /// The server's TLS settings: TLS 1.2 and later, ALPN `http/1.1`, a 1 s close.
    let server: TLSConfiguration

    /// - Parameters:
    ///   - certificateChainPEM: the server certificate first, then the intermediates, in PEM.
    ///   - privateKeyPEM: the certificate's private key in PEM (unencrypted).
    public init(certificateChainPEM: [UInt8], privateKeyPEM: [UInt8]) throws(HTTPTLSError) {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(certificateChainPEM)
        } catch {
            throw HTTPTLSError(code: .certificate, message: "it is not a PEM certificate chain (\(error))")
        }
        guard !chain.isEmpty else { throw HTTPTLSError(code: .certificate, message: "it holds no PEM certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: privateKeyPEM, format: .pem)
        } catch {
            throw HTTPTLSError(code: .privateKey, message: "it is not an unencrypted PEM private key (\(error))")
        }
        var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        server.minimumTLSVersion = .tlsv12
        server.applicationProtocols = ["http/1.1"]
        // How long a close waits for the peer's close_notify (5 s by default): as long as the
        // edge lingers after its own answers, so that a peer that never answers does not keep its
        // descriptor well past the timeout that closed it.
        server.shutdownTimeout = .seconds(1)
        do {
            // Builds what every connection will use, so that a key of another certificate fails here.
            _ = try NIOSSLContext(configuration: server)
        } catch {
            throw HTTPTLSError(code: .mismatch, message: "the private key does not go with the certificate (\(error))")
        }
        self.server = server
    }
}

/// Why the TLS files cannot be used.
public struct HTTPTLSError: Error, CustomStringConvertible {
    /// Which file is at fault.
    public struct Code: Hashable, Sendable {
        private enum Base: Hashable, Sendable {
            case certificate, privateKey, mismatch
        }
        private let base: Base

        /// The certificate file cannot be read as a chain.
        public static let certificate = Code(base: .certificate)
        /// The key file cannot be read as a private key.
        public static let privateKey = Code(base: .privateKey)
        /// Both read, but the key is not the certificate's.
        public static let mismatch = Code(base: .mismatch)
    }

    public let code: Code
    /// What is wrong, as a phrase about the file.
    public let message: String

    public var description: String { message }
}
