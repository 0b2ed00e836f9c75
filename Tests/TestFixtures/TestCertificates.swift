//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Foundation

/// A certificate authority, an intermediate and a server certificate for `localhost` and
/// 127.0.0.1, made with the `openssl` command in a folder of their own (deleted with the value's
/// `remove()`): what `--http-tls-cert-file` and `curl --cacert` take.
public struct TestCertificates: Sendable {
    public let folder: URL
    /// The root certificate only, as a client trusts it.
    public var caFile: String { folder.appendingPathComponent("ca.pem").path }
    /// The server certificate, then the intermediate that signed it.
    public var chainFile: String { folder.appendingPathComponent("chain.pem").path }
    public var keyFile: String { folder.appendingPathComponent("server.key").path }
    /// A private key of another certificate.
    public var otherKeyFile: String { folder.appendingPathComponent("int.key").path }

    public static var openssl: String? {
        ["/usr/bin/openssl", "/usr/local/bin/openssl", "/opt/homebrew/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public static var isAvailable: Bool { openssl != nil }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init() throws {
        guard let openssl = Self.openssl else { throw Failure(description: "openssl is not installed") }
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try write("int.ext", "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
        try write(
            "server.ext",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
        )
        let steps: [[String]] = [
            ["req", "-x509"] + ec + [
                "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=task-status-bridge test root",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ],
            ["req"] + ec + ["-keyout", "int.key", "-out", "int.csr", "-subj", "/CN=task-status-bridge test intermediate"],
            [
                "x509", "-req", "-in", "int.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "int.pem", "-days", "2", "-extfile",
                "int.ext",
            ],
            ["req"] + ec + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
            [
                "x509", "-req", "-in", "server.csr", "-CA", "int.pem", "-CAkey", "int.key", "-CAcreateserial", "-out", "server.pem", "-days", "2",
                "-extfile", "server.ext",
            ],
        ]
        for arguments in steps { try run(openssl, arguments) }
        let server = try Data(contentsOf: folder.appendingPathComponent("server.pem"))
        let intermediate = try Data(contentsOf: folder.appendingPathComponent("int.pem"))
        try (server + intermediate).write(to: folder.appendingPathComponent("chain.pem"))
    }

    public func remove() {
        try? FileManager.default.removeItem(at: folder)
    }

    private func write(_ name: String, _ text: String) throws {
        try Data(text.utf8).write(to: folder.appendingPathComponent(name))
    }

    private func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = folder
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "openssl \(arguments.joined(separator: " ")) failed: \(text)")
        }
    }
}
