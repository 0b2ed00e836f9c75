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
    }
}
