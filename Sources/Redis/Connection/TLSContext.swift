//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import COpenSSL
import Synchronization

/// One OpenSSL `SSL_CTX` for a ``RedisTLSConfiguration``: the trusted CAs, the client
/// certificate and the protocol floor, loaded once and shared by every connection that uses the
/// same settings (OpenSSL makes a context safe to share once it is set up).
final class TLSContext: @unchecked Sendable {
    // Only read after init: SSL_new takes its own reference.
    let context: OpaquePointer
    let configuration: RedisTLSConfiguration

    /// TLS 1.3's suites, in the order offered.
    static let suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    /// TLS 1.2's, in the order offered.
    static let tls12Ciphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

    private static let contexts = Mutex<[RedisTLSConfiguration: TLSContext]>([:])

    /// The process's context for these settings, made on first use. A file that cannot be read or
    /// a key that does not match its certificate is a configuration error naming the file.
    static func shared(for settings: RedisTLSConfiguration) throws(RedisError) -> TLSContext {
        // The names verified are the session's business, not the context's.
        var configuration = settings
        configuration.serverName = nil
        configuration.seedName = nil
        let found = contexts.withLock { $0[configuration] }
        if let found { return found }
        let made = try TLSContext(configuration: configuration)
        return contexts.withLock { contexts -> TLSContext in
            if let raced = contexts[configuration] { return raced }
            contexts[configuration] = made
            return made
        }
    }

    private init(configuration: RedisTLSConfiguration) throws(RedisError) {
        self.configuration = configuration
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw RedisError(code: .invalidConfiguration, message: "TLS: cannot make an SSL context: \(TLSContext.errorQueueText())")
        }
        self.context = context
        func invalid(_ what: String) -> RedisError {
            RedisError(code: .invalidConfiguration, message: "TLS: \(what): \(TLSContext.errorQueueText())")
        }
        guard tsb_ssl_ctx_set_min_tls12(context) == 1 else { throw invalid("cannot require TLS 1.2") }
        // AES-128-GCM first (a third cheaper than AES-256 per byte, and as good a choice), then
        // the others servers commonly offer; forward secrecy and AEAD only.
        guard SSL_CTX_set_ciphersuites(context, Self.suites) == 1, SSL_CTX_set_cipher_list(context, Self.tls12Ciphers) == 1 else {
            throw invalid("cannot set the cipher suites")
        }
        if configuration.verifiesPeer {
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            if let caFile = configuration.caFile {
                guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else { throw invalid("cannot read the CA file \(caFile)") }
            } else {
                guard SSL_CTX_set_default_verify_paths(context) == 1 else { throw invalid("cannot load the system's CA store") }
            }
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        }
        switch (configuration.certificateFile, configuration.keyFile) {
        case (let certificate?, let key?):
            guard SSL_CTX_use_certificate_chain_file(context, certificate) == 1 else {
                throw invalid("cannot read the client certificate \(certificate)")
            }
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else { throw invalid("cannot read the client key \(key)") }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw invalid("the client key \(key) does not belong to the certificate \(certificate)")
            }
        case (nil, nil):
            break
        default:
            throw RedisError(code: .invalidConfiguration, message: "TLS: a client certificate needs both its certificate file and its key file")
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// Every error OpenSSL queued on this thread, oldest first, and clears the queue.
    static func errorQueueText() -> String {
        var texts: [String] = []
        for _ in 0..<16 {
            let code = ERR_get_error()
            if code == 0 { break }
            texts.append(errorText(code))
        }
        ERR_clear_error()
        return texts.isEmpty ? "no detail from OpenSSL" : texts.joined(separator: "; ")
    }

    static func errorText(_ code: UInt) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
