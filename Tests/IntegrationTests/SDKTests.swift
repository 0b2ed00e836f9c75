//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import Foundation
import JSONPatch
import Testing

/// A client users already have: SailPoint's Python SDK (`sailpoint` 1.x, its `v2026` module),
/// installed by `scripts/test` into a virtual environment named by `$TASKSTATUS_SDK_PYTHON`.
enum SDK {
    static let python = ProcessInfo.processInfo.environment["TASKSTATUS_SDK_PYTHON"]
    static var isAvailable: Bool { python.map { FileManager.default.isExecutableFile(atPath: $0) } ?? false }
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("SDK/sdk_check.py").path
}

@Suite(
    "SailPoint's Python SDK",
    .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"),
    .enabled(if: SDK.isAvailable, "TASKSTATUS_SDK_PYTHON is not set: scripts/test installs the SDK into a virtual environment"),
    .timeLimit(.minutes(2))
)
struct SDKTests {
    @Test("update_task_status, get_task_status and get_task_status_list work unchanged against the bridge, with an access token")
    func sdk() async throws {
        try await TestSpace.with { space in
            try await space.putTask("sdk-task")
            try await space.putTask("sdk-2", ["completionStatus": "SUCCESS", "completed": "2026-11-01T00:00:00Z"])
            try await space.putTask("sdk-3")
            try await RunningBridge.with(space, configure: { $0.auth = Tokens.configuration }) { bridge in
                let base = try #require(await bridge.baseURL())
                let token = try await Tokens.sign(scope: .text("sp:scopes:all"))
                let process = Process()
                process.executableURL = URL(fileURLWithPath: SDK.python!)
                process.arguments = [SDK.script, base, token, "sdk-task"]
                let output = Pipe()
                process.standardOutput = output
                process.standardError = FileHandle.nullDevice
                try process.run()
                let data = output.fileHandleForReading.readDataToEndOfFile()
                _ = await eventually(timeout: .seconds(30)) { process.isRunning ? nil : true }
                #expect(process.terminationStatus == 0)
                let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
                let parsed = try JSONValue(parsing: line)
                #expect(parsed["updated"]?["id"] == "sdk-task")
                #expect(parsed["updated"]?["percentComplete"] == 100)
                #expect(parsed["updated"]?["completionStatus"] == "SUCCESS")
                #expect(parsed["updated"]?["type"] == "QUARTZ")
                #expect(parsed["updated"]?["completed"]?.stringValue?.hasPrefix("2026-11-28T12:00:00") == true)
                #expect(parsed["read"]?["percentComplete"] == 100)
                #expect(try await space.hash("sdk-task")["completionStatus"] == "SUCCESS")
                // A filtered, counted page of one: ties of created go by id, newest first.
                #expect(parsed["list"]?["status"] == 200)
                #expect(parsed["list"]?["total"] == "2")
                #expect(parsed["list"]?["ids"] == ["sdk-task"])
            }
        }
    }
}
