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
import JSONPatch
import Redis
import Synchronization
import TaskStatus

extension ConnectionOptions {
    func client() throws -> TaskStatusClient {
        TaskStatusClient(
            configuration: try redisConfiguration(),
            prefix: try resolvedPrefix(),
            shards: try resolvedShards(),
            pubsub: try resolvedPubSub()
        )
    }
}

/// Prints a line on standard error and exits with `status`.
func exitWithMessage(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    Foundation.exit(status)
}

/// `put FILE`: store or replace a task.
struct PutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put",
        abstract: "Store or replace a task from a TaskStatus JSON file (- for standard input); prints it with its revision."
    )

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The TaskStatus JSON file, or - for standard input.")
    var file: String

    func run() async throws {
        let client = try connection.client()
        let document: JSONValue
        do {
            document = try JSONValue(parsing: try readInput(file))
        } catch {
            exitWithMessage("error: \(file): \(error)", status: 1)
        }
        do {
            let record = try await client.put(document)
            FileHandle.standardError.write(Data("stored \(client.keys.task(record.document["id"]?.stringValue ?? "")) at _rev \(record.rev)\n".utf8))
            print(String(decoding: record.taskJSON, as: UTF8.self))
        } catch {
            exitWithMessage("error: \(error)", status: 1)
        }
    }
}

/// `get ID`: print a task.
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Print a task's TaskStatus (its _rev on standard error); exit 1 when there is none."
    )

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Indent the output.")
    var pretty = false

    @Argument(help: "The task id.")
    var id: String

    func run() async throws {
        let client = try connection.client()
        do {
            guard let record = try await client.get(id) else { exitWithMessage("error: there is no task with id \(id)", status: 1) }
            FileHandle.standardError.write(Data("_rev \(record.rev)\n".utf8))
            print(pretty ? record.document.prettyJSONText : String(decoding: record.taskJSON, as: UTF8.self))
        } catch {
            exitWithMessage("error: \(error)", status: 1)
        }
    }
}

/// `send ID PATCH`: queue a request and wait for its reply.
struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Queue an update request, wait for its reply and print it; exit 0 only on status 200.",
        discussion:
            "PATCH is JSON Patch text, @FILE to read a file, or - for standard input. Exit status: 0 on 200, 1 on any other status, 2 when no reply came."
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The request id (default: a random one).")
    var requestId: String?

    @Option(help: "The revision the task must be at (if-match).")
    var ifMatch: String?

    @Option(help: "The authorization value, e.g. \"Bearer <JWT>\" (env TASKSTATUS_AUTHORIZATION).")
    var authorization: String?

    @Option(help: "Seconds to wait for the reply.")
    var timeout = 30

    @Flag(help: "Leave out x-sailpoint-experimental: true.")
    var noExperimental = false

    @Argument(help: "The task id.")
    var id: String

    @Argument(help: "The JSON Patch: text, @FILE, or - for standard input.")
    var patch: String

    func run() async throws {
        let client = try connection.client()
        let patchBytes: [UInt8]
        if patch == "-" {
            patchBytes = try readInput("-")
        } else if patch.hasPrefix("@") {
            patchBytes = try readInput(String(patch.dropFirst()))
        } else {
            patchBytes = Array(patch.utf8)
        }
        var request = TaskStatusClient.Request(
            taskId: id,
            patch: patchBytes,
            ifMatch: ifMatch,
            authorization: Setting("--authorization", "TASKSTATUS_AUTHORIZATION", authorization).value,
            experimental: !noExperimental
        )
        if let requestId { request.requestId = requestId }
        let reply: [UInt8]
        do {
            reply = try await client.send(request, timeout: .seconds(max(1, timeout)))
        } catch {
            exitWithMessage("error: \(error)", status: 2)
        }
        print(String(decoding: reply, as: UTF8.self))
        let status = (try? JSONValue(parsing: reply))?["status"]?.int64Value
        if status != 200 { Foundation.exit(1) }
    }
}

/// `replay-dead`: list dead-lettered requests, or move them back to the request stream.
struct ReplayDeadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay-dead",
        abstract: "List the dead-letter stream, or move its entries back to the request stream after a fix.",
        discussion: """
            Without --all or --id, lists the dead letters (oldest first) and changes nothing. With them, \
            each entry goes back to the request stream as its producer wrote it, keeping its request id; \
            the 500 reply stored when it was dead-lettered is dropped, so that the bridge applies it.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Replay every dead letter (up to --count).")
    var all = false

    @Option(name: .customLong("id"), help: "Replay this dead-letter entry (repeatable).")
    var ids: [String] = []

    @Option(help: "The most entries to list or replay.")
    var count = 1000

    func validate() throws {
        guard count > 0, count <= 1_000_000 else { throw ValidationError("--count must be 1 to 1000000") }
        if all, !ids.isEmpty { throw ValidationError("give --all or --id, not both") }
    }

    func run() async throws {
        let client = try connection.client()
        do {
            var letters = try await client.deadLetters(count: count)
            if !ids.isEmpty {
                let wanted = Set(ids)
                letters = letters.filter { wanted.contains($0.id) }
                let missing = wanted.subtracting(letters.map(\.id))
                if !missing.isEmpty {
                    FileHandle.standardError.write(Data("not in \(client.keys.dead): \(missing.sorted().joined(separator: ", "))\n".utf8))
                }
            }
            guard all || !ids.isEmpty else {
                for letter in letters {
                    print("\(letter.id)  task \(letter.taskId)  request \(letter.requestId)  delivered \(letter.deliveries)x  \(letter.reason)")
                }
                FileHandle.standardError.write(Data("\(letters.count) dead letters in \(client.keys.dead); replay with --all or --id\n".utf8))
                return
            }
            for letter in letters {
                let entry = try await client.replay(letter)
                print("\(letter.id) -> \(client.keys.requests) \(entry)  task \(letter.taskId)  request \(letter.requestId)")
            }
            FileHandle.standardError.write(Data("replayed \(letters.count) dead letters\n".utf8))
        } catch {
            exitWithMessage("error: \(error)", status: 1)
        }
    }
}

/// `reindex`: put every stored task in the list index.
struct ReindexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex",
        abstract:
            "Put every stored task in the list index (hashes written before this version or by hand); resumes a run that was stopped, and is safe to run again."
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Keys per SCAN step.")
    var batch = 500

    @Flag(help: "Start over instead of resuming a run that was stopped.")
    var restart = false

    func run() async throws {
        let reindexer = Reindexer(
            configuration: try connection.redisConfiguration(),
            prefix: try connection.resolvedPrefix(),
            shards: try connection.resolvedShards()
        )
        let started = ContinuousClock.now
        let lastReport = Mutex(ContinuousClock.now)
        do {
            let done = try await reindexer.run(batch: max(10, batch), restart: restart) { progress in
                let due = lastReport.withLock { last in
                    guard ContinuousClock.now - last >= .seconds(1) else { return false }
                    last = .now
                    return true
                }
                if due {
                    FileHandle.standardError.write(
                        Data(
                            "indexed \(progress.indexed) tasks (\(progress.skipped) skipped), node \(progress.nodesDone + 1) of \(progress.nodes)\n"
                                .utf8
                        )
                    )
                }
            }
            print("indexed \(done.indexed) tasks, skipped \(done.skipped), in \(ContinuousClock.now - started)")
        } catch {
            exitWithMessage("error: \(error) (run reindex again to resume)", status: 1)
        }
    }
}
