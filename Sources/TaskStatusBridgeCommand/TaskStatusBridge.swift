//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import ArgumentParser

/// The `task-status-bridge` executable: one subcommand per job.
@main
struct TaskStatusBridge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task-status-bridge",
        abstract: "SailPoint's task-status PATCH semantics over Redis: a JSON Patch bridge.",
        subcommands: [
            ServeCommand.self, PutCommand.self, GetCommand.self, SendCommand.self, PatchCommand.self, ReplayDeadCommand.self, ReindexCommand.self,
            LoadTestCommand.self,
        ]
    )
}
