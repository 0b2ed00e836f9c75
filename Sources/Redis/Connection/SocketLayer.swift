//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

#if canImport(Glibc)
import Glibc
#endif

/// The bytes under a connection: the connected socket itself, or a TLS session on it. hiredis
/// connects the socket and parses what is read; everything in between goes through here.
///
/// Both layers block, bounded by the socket's timeouts (`SO_RCVTIMEO`, `SO_SNDTIMEO`), and never
/// raise `SIGPIPE`.
enum SocketLayer {
    case plain(Int32)
    case tls(TLSSession)

    /// Writes all of `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer) throws(SocketFailure) {
        switch self {
        case .tls(let session):
            try session.write(bytes)
        case .plain(let socket):
            try Self.send(bytes, on: socket)
        }
    }

    /// Reads what has arrived (at least one byte) into `buffer`.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketFailure) -> Int {
        switch self {
        case .tls(let session):
            return try session.read(into: buffer)
        case .plain(let socket):
            return try Self.receive(into: buffer, from: socket)
        }
    }

    var isTLS: Bool {
        if case .tls = self { return true }
        return false
    }

    /// `send` until all of `bytes` is written; `MSG_NOSIGNAL`: a closed connection is an error to
    /// report, not a `SIGPIPE`.
    static func send(_ bytes: UnsafeRawBufferPointer, on socket: Int32) throws(SocketFailure) {
        var offset = 0
        // Bounded by the bytes, and by the socket's timeout per call.
        while offset < bytes.count {
            let written = Glibc.send(socket, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if written > 0 {
                offset += written
            } else if written < 0, errno == EINTR {
                continue
            } else if written < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                throw .timedOut
            } else {
                throw .closed(String(cString: strerror(written < 0 ? errno : EPIPE)))
            }
        }
    }

    /// One `recv` of what has arrived, waiting up to the socket's timeout.
    static func receive(into buffer: UnsafeMutableRawBufferPointer, from socket: Int32) throws(SocketFailure) -> Int {
        // Bounded: only an interrupted call goes round again.
        while true {
            let received = recv(socket, buffer.baseAddress, buffer.count, 0)
            if received > 0 { return received }
            if received == 0 { throw .closed("the server closed the connection") }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut }
            throw .closed(String(cString: strerror(errno)))
        }
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
