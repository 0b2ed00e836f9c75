//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Bridge
import Foundation
import HTTPAPI
import TestFixtures
import Testing

@testable import TaskStatusBridgeCommand

/// Each setting is written once (ServeOptions): the help text, the resolution and the docs agree.
@Suite("Settings: one source for help, resolution and docs")
struct OptionsTests {
    static let docs: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return (try? String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)) ?? ""
    }()

    @Test("every option of serve has a setting, and every setting is an option of serve, with its help")
    func helpMatches() {
        let help = ServeCommand.helpMessage(columns: 10_000)
        // Each option's line starts with its flag.
        let flags = Set(
            help.split(separator: "\n").compactMap { line -> String? in
                let trimmed = line.drop { $0 == " " }
                return trimmed.hasPrefix("--") ? String(trimmed.prefix { $0 != " " && $0 != "," }) : nil
            }
        )
        let documented = Set(ServeOptions.all.map(\.flag))
        #expect(flags.subtracting(["--help", "--version"]) == documented)
        for option in ServeOptions.all {
            #expect(help.contains("env \(option.variable); default \(option.defaultText)"), "\(option.flag)")
        }
    }

    @Test("docs/configuration.md holds each section's table as the settings write it", arguments: OptionSection.allCases)
    func docsMatch(section: OptionSection) {
        let table = section.markdownTable(ServeOptions.all)
        #expect(Self.docs.contains("## \(section.rawValue)\n"))
        #expect(Self.docs.contains(table), "docs/configuration.md should hold, under \"## \(section.rawValue)\":\n\n\(table)\n")
    }

    @Test("a flag wins over its variable, the variable over the default; a bad value names both")
    func resolution() throws {
        #expect(try ServeOptions.batchSize.resolve(nil) == BridgeConfiguration.Defaults.batchSize)
        #expect(try ServeOptions.batchSize.resolve("7") == 7)
        let error = try #require(throws: (any Error).self) { try ServeOptions.batchSize.resolve("2000") }
        #expect("\(error)".contains("invalid --batch-size (environment TASKSTATUS_BATCH_SIZE): \"2000\" is not between 1 and 1000"))
        #expect(try ServeOptions.jwtRequireExp.resolve("off") == false)
        #expect(throws: (any Error).self) { try ServeOptions.jwtRequireExp.resolve("maybe") }
    }

    @Test("serve resolves to the library's defaults when nothing is given")
    func defaults() throws {
        let command = try ServeCommand.parse(["--no-auth"])
        let resolved = try command.resolve()
        let library = BridgeConfiguration(redis: resolved.bridge.redis, consumer: resolved.bridge.consumer)
        #expect(resolved.bridge.batchSize == library.batchSize)
        #expect(resolved.bridge.blockTimeout == library.blockTimeout)
        #expect(resolved.bridge.claimIdle == library.claimIdle)
        #expect(resolved.bridge.replyTTL == library.replyTTL)
        #expect(resolved.bridge.workers == library.workers)
        #expect(resolved.bridge.httpQueueLimit == library.httpQueueLimit)
        #expect(resolved.bridge.limits == library.limits)
        #expect(resolved.bridge.auth.requiresExpiry)
        #expect(!resolved.bridge.rateLimit.enabled)
        #expect(resolved.http.port == 8080)
        let http = HTTPConfiguration()
        #expect(resolved.http.headerTimeout == http.headerTimeout)
        #expect(resolved.http.bodyTimeout == http.bodyTimeout)
        #expect(resolved.http.idleTimeout == http.idleTimeout)
        #expect(resolved.http.maxConnections == http.maxConnections)
        #expect(resolved.http.tls == nil)
    }

    @Test("the HTTP edge's settings reach the configuration")
    func httpEdge() throws {
        let command = try ServeCommand.parse([
            "--no-auth", "--http-header-timeout", "3", "--http-body-timeout", "4", "--http-idle-timeout", "5", "--http-max-connections", "77",
        ])
        let http = try command.resolve().http
        #expect(http.headerTimeout == .seconds(3))
        #expect(http.bodyTimeout == .seconds(4))
        #expect(http.idleTimeout == .seconds(5))
        #expect(http.maxConnections == 77)
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--no-auth", "--http-header-timeout", "0"]).resolve() }
    }

    @Test(
        "HTTPS takes a certificate chain and its key, both or neither; a bad file is named with its flag",
        .enabled(if: TestCertificates.isAvailable)
    )
    func tlsFiles() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        func message(_ arguments: [String]) -> String? {
            do {
                _ = try ServeCommand.parse(["--no-auth"] + arguments).resolve()
                return nil
            } catch {
                return "\(error)"
            }
        }
        let cert = certificates.chainFile
        let key = certificates.keyFile
        #expect(message(["--http-tls-cert-file", cert, "--http-tls-key-file", key]) == nil)
        #expect(try ServeCommand.parse(["--no-auth", "--http-tls-cert-file", cert, "--http-tls-key-file", key]).resolve().http.tls != nil)
        #expect(message(["--http-tls-cert-file", cert])?.contains("--http-tls-cert-file needs --http-tls-key-file") == true)
        #expect(message(["--http-tls-key-file", key])?.contains("--http-tls-key-file needs --http-tls-cert-file") == true)
        let missing = certificates.folder.appendingPathComponent("missing.pem").path
        #expect(message(["--http-tls-cert-file", missing, "--http-tls-key-file", key])?.contains("invalid --http-tls-cert-file") == true)
        #expect(message(["--http-tls-cert-file", missing, "--http-tls-key-file", key])?.contains(missing) == true)
        let notCertificate = message(["--http-tls-cert-file", key, "--http-tls-key-file", key])
        #expect(
            notCertificate?.contains(
                "invalid --http-tls-cert-file (environment TASKSTATUS_HTTP_TLS_CERT_FILE): \(key): it is not a PEM certificate chain"
            ) == true
        )
        let notKey = message(["--http-tls-cert-file", cert, "--http-tls-key-file", cert])
        #expect(notKey?.contains("invalid --http-tls-key-file (environment TASKSTATUS_HTTP_TLS_KEY_FILE): \(cert)") == true)
        let mismatch = message(["--http-tls-cert-file", cert, "--http-tls-key-file", certificates.otherKeyFile])
        #expect(mismatch?.contains("--http-tls-key-file \(certificates.otherKeyFile) does not go with --http-tls-cert-file \(cert)") == true)
    }
}
