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
/// (with the server's name or address verified), then encrypted reads and writes.
///
/// OpenSSL works on one end of a BIO pair, and the socket is read and written here, straight
/// from and into the pair's buffers: a pipeline is encrypted and sent with one `send` per
/// ``pairBuffer`` (OpenSSL's socket BIO would make a system call per 16 KB record, and raise
/// `SIGPIPE` on a reset connection, which `MSG_NOSIGNAL` does not), and one `recv` takes whatever
/// ciphertext has arrived. The socket's own timeouts (`SO_RCVTIMEO`, `SO_SNDTIMEO`) bound every
/// call, as they do without TLS.
final class TLSSession {
    /// The ciphertext each direction of the pair holds at most.
    static let pairBuffer = 256 << 10

    private let ssl: OpaquePointer
    /// Our end of the pair: ciphertext for the socket is read from it, ciphertext from the
    /// socket written to it (OpenSSL's end is owned by `ssl`).
    private let network: OpaquePointer
    private let socket: Int32
    private let verifies: Bool
    /// Whether the session may still say goodbye (`close_notify`): not after any failure.
    private var healthy = true

    /// Handshakes on `socket`, verifying that the certificate names `name` (a DNS name, or an IP
    /// address checked against the IP entries), sending `name` as SNI unless it is an address.
    init(context: TLSContext, socket: Int32, name: String) throws(SocketFailure) {
        ERR_clear_error()
        var inner: OpaquePointer?
        var outer: OpaquePointer?
        guard let ssl = SSL_new(context.context) else { throw .tls("cannot start a TLS session: \(TLSContext.errorQueueText())") }
        guard BIO_new_bio_pair(&inner, Self.pairBuffer, &outer, Self.pairBuffer) == 1, let inner, let outer else {
            SSL_free(ssl)
            throw .tls("cannot start a TLS session: \(TLSContext.errorQueueText())")
        }
        self.ssl = ssl
        self.network = outer
        self.socket = socket
        self.verifies = context.configuration.verifiesPeer
        SSL_set_bio(ssl, inner, inner)
        // A write fills the pair, is sent, and goes on where it stopped.
        _ = tsb_ssl_set_mode_partial_write(ssl)
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
        // Bounded by the handshake's round trips, each by the socket's timeout.
        while true {
            ERR_clear_error()
            let result = SSL_connect(ssl)
            do throws(SocketFailure) {
                try flush()
                if result == 1 { break }
                let kind = SSL_get_error(ssl, result)
                if kind == SSL_ERROR_WANT_WRITE { continue }
                guard kind == SSL_ERROR_WANT_READ else { throw failure(result) }
                try receive()
            } catch {
                healthy = false
                throw error
            }
        }
    }

    deinit {
        if healthy {
            ERR_clear_error()
            // One close_notify, without waiting for the server's.
            if SSL_shutdown(ssl) >= 0 { try? flush() }
        }
        SSL_free(ssl)
        BIO_free(network)
    }

    /// The protocol and cipher agreed, for logs.
    var agreed: String {
        let version = SSL_get_version(ssl).map { String(cString: $0) } ?? "?"
        let cipher = SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? "?"
        return "\(version) \(cipher)"
    }

    /// Encrypts all of `bytes` and sends the ciphertext.
    func write(_ bytes: UnsafeRawBufferPointer) throws(SocketFailure) {
        var offset = 0
        do throws(SocketFailure) {
            // Bounded by the bytes: each pass encrypts what the pair takes, or sends it.
            while offset < bytes.count {
                let chunk = Int32(min(bytes.count - offset, Int(Int32.max)))
                ERR_clear_error()
                let written = SSL_write(ssl, bytes.baseAddress! + offset, chunk)
                if written > 0 {
                    offset += Int(written)
                } else if SSL_get_error(ssl, written) == SSL_ERROR_WANT_WRITE {
                    try flush()
                } else {
                    throw failure(written)
                }
            }
            try flush()
        } catch {
            healthy = false
            throw error
        }
    }

    /// Reads what is there (at least one byte) into `buffer`, receiving more ciphertext when
    /// OpenSSL holds no whole record.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketFailure) -> Int {
        // Bounded by the socket's timeout per receive, and by the record's size.
        while true {
            ERR_clear_error()
            let received = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
            if received > 0 { return Int(received) }
            do throws(SocketFailure) {
                guard SSL_get_error(ssl, received) == SSL_ERROR_WANT_READ else { throw failure(received) }
                // A record may have asked for an answer of OpenSSL's own (a key update).
                try flush()
                try receive()
            } catch {
                healthy = false
                throw error
            }
        }
    }

    /// Sends the ciphertext OpenSSL has written, straight from the pair's buffer.
    private func flush() throws(SocketFailure) {
        // Bounded by the pending bytes (the pair's buffer is a ring: at most two pieces per fill).
        while true {
            var data: UnsafeMutablePointer<CChar>?
            let count = Int(BIO_nread0(network, &data))
            guard count > 0, let pending = data else { return }
            try SocketLayer.send(UnsafeRawBufferPointer(start: pending, count: count), on: socket)
            _ = BIO_nread(network, &data, Int32(count))
        }
    }

    /// Receives what ciphertext has arrived (waiting up to the socket's timeout), straight into
    /// the pair's buffer.
    private func receive() throws(SocketFailure) {
        var space: UnsafeMutablePointer<CChar>?
        let room = Int(BIO_nwrite0(network, &space))
        guard room > 0, let free = space else { throw .tls("OpenSSL took none of the data received") }
        let count = try SocketLayer.receive(into: UnsafeMutableRawBufferPointer(start: free, count: room), from: socket)
        _ = BIO_nwrite(network, &space, Int32(count))
    }

    /// What a failed call means: a certificate refused (by us or by the server), a server that
    /// does not speak TLS, a close, or another TLS error.
    private func failure(_ result: Int32) -> SocketFailure {
        let kind = SSL_get_error(ssl, result)
        if verifies {
            let verdict = SSL_get_verify_result(ssl)
            if verdict != X509_V_OK {
                let reason = X509_verify_cert_error_string(verdict).map { String(cString: $0) } ?? "error \(verdict)"
                ERR_clear_error()
                return .certificate("the server's certificate was refused: \(reason)")
            }
        }
        if kind == SSL_ERROR_ZERO_RETURN { return .closed("the server closed the TLS session") }
        let first = ERR_peek_error()
        let text = TLSContext.errorQueueText()
        switch ERR_GET_REASON(first) {
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            return .closed("the server closed the connection (\(text))")
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, SSL_R_TLSV1_ALERT_UNKNOWN_CA,
            SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN, SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED, SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE,
            SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED, SSL_R_TLSV1_ALERT_ACCESS_DENIED:
            return .certificate("the server refused our client certificate: \(text)")
        case SSL_R_WRONG_VERSION_NUMBER, SSL_R_PACKET_LENGTH_TOO_LONG, SSL_R_HTTP_REQUEST:
            return .notTLS("the server does not answer in TLS (\(text)): is this a plain port? use redis:// for it")
        default:
            return .tls(text)
        }
    }
}
