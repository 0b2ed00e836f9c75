//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// One TLS session on a connected, blocking socket that the caller keeps owning: the handshake
/// (with the server's name or address verified), then encrypted reads and writes. The socket's
/// own timeouts (`SO_RCVTIMEO`, `SO_SNDTIMEO`) bound every call, as they do without TLS.
final class TLSSession {
    private let ssl: OpaquePointer
    private let verifies: Bool
    /// Whether the session may still say goodbye (`close_notify`): not after any failure.
    private var healthy = true

    /// Handshakes on `socket`, verifying that the certificate names `name` (a DNS name, or an IP
    /// address checked against the IP entries), sending `name` as SNI unless it is an address.
    init(context: TLSContext, socket: Int32, name: String) throws(SocketFailure) {
        ERR_clear_error()
        guard let ssl = SSL_new(context.context), let bio = tsb_bio_new_socket(TLSContext.socketMethod, socket) else {
            throw .tls("cannot start a TLS session: \(TLSContext.errorQueueText())")
        }
        self.ssl = ssl
        self.verifies = context.configuration.verifiesPeer
        SSL_set_bio(ssl, bio, bio)
        let isAddress = RedisTLSConfiguration.isIPAddress(name)
        if !isAddress { _ = tsb_ssl_set_sni(ssl, name) }
        if verifies {
            let named: Int32
            if isAddress {
                named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
            } else {
                SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
                named = SSL_set1_host(ssl, name)
            }
            guard named == 1 else {
                healthy = false
                throw .tls("cannot verify the name \(name): \(TLSContext.errorQueueText())")
            }
        }
        ERR_clear_error()
        let result = SSL_connect(ssl)
        guard result == 1 else {
            healthy = false
            throw failure(result)
        }
    }

    deinit {
        if healthy {
            ERR_clear_error()
            // One close_notify, without waiting for the server's.
            _ = SSL_shutdown(ssl)
        }
        SSL_free(ssl)
    }

    /// The protocol and cipher agreed, for logs.
    var agreed: String {
        let version = SSL_get_version(ssl).map { String(cString: $0) } ?? "?"
        let cipher = SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? "?"
        return "\(version) \(cipher)"
    }

    /// Writes all of `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer) throws(SocketFailure) {
        var offset = 0
        while offset < bytes.count {
            let chunk = Int32(min(bytes.count - offset, Int(Int32.max)))
            ERR_clear_error()
            let written = SSL_write(ssl, bytes.baseAddress! + offset, chunk)
            guard written > 0 else {
                healthy = false
                throw failure(written)
            }
            offset += Int(written)
        }
    }

    /// Reads what is there (at least one byte) into `buffer`.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketFailure) -> Int {
        ERR_clear_error()
        let received = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
        guard received > 0 else {
            healthy = false
            throw failure(received)
        }
        return Int(received)
    }

    /// What a failed call means: a lost connection, a timeout, a certificate refused (by us or
    /// by the server), a server that does not speak TLS, or another TLS error.
    private func failure(_ result: Int32) -> SocketFailure {
        let savedErrno = errno
        let kind = SSL_get_error(ssl, result)
        if verifies {
            let verdict = SSL_get_verify_result(ssl)
            if verdict != X509_V_OK {
                let reason = X509_verify_cert_error_string(verdict).map { String(cString: $0) } ?? "error \(verdict)"
                ERR_clear_error()
                return .certificate("the server's certificate was refused: \(reason)")
            }
        }
        switch kind {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .timedOut
        case SSL_ERROR_ZERO_RETURN:
            return .closed("the server closed the TLS session")
        case SSL_ERROR_SYSCALL where ERR_peek_error() == 0:
            if result == 0 || savedErrno == 0 { return .closed("the server closed the connection") }
            if savedErrno == EAGAIN || savedErrno == EWOULDBLOCK { return .timedOut }
            return .closed(String(cString: strerror(savedErrno)))
        default:
            break
        }
        var certificateAlert = false
        var notTLS = false
        var eof = false
        let first = ERR_peek_error()
        let text = TLSContext.errorQueueText()
        switch ERR_GET_REASON(first) {
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            eof = true
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, SSL_R_TLSV1_ALERT_UNKNOWN_CA,
            SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN, SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED, SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE,
            SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED, SSL_R_TLSV1_ALERT_ACCESS_DENIED:
            certificateAlert = true
        case SSL_R_WRONG_VERSION_NUMBER, SSL_R_PACKET_LENGTH_TOO_LONG, SSL_R_HTTP_REQUEST:
            notTLS = true
        default:
            break
        }
        if eof { return .closed("the server closed the connection (\(text))") }
        if certificateAlert { return .certificate("the server refused our client certificate: \(text)") }
        if notTLS { return .notTLS("the server does not answer in TLS (\(text)): is this a plain port? use redis:// for it") }
        return .tls(text)
    }
}

/// Why a socket or its TLS session failed, before the connection names its server.
enum SocketFailure: Error {
    /// The peer closed the connection or reset it.
    case closed(String)
    /// The socket's timeout passed.
    case timedOut
    /// A certificate was refused, by us or by the server: a configuration matter.
    case certificate(String)
    /// The server answered something that is not TLS.
    case notTLS(String)
    /// Any other TLS failure.
    case tls(String)
}
