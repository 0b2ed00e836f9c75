//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Foundation
import JSONPatch

/// `patch`: the JSON Patch engine on the command line.
struct PatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patch",
        abstract: "Apply a JSON Patch (RFC 6902) to a JSON document.",
        discussion: """
            With --doc and --patch, prints the patched document, or the error as JSON on standard \
            error with exit status 1.
            With --jsonl, reads JSON Lines {"doc":...,"patch":[...]} from standard input and writes \
            one line per input: {"result":...} or {"error":"..."}. A bad line never stops the stream; \
            the exit status is 0 when all input was read.
            """
    )

    @Option(help: "The document to patch (a file, or - for standard input).")
    var doc: String?

    @Option(help: "The JSON Patch document (a file, or - for standard input).")
    var patch: String?

    @Flag(help: "Read JSON Lines {\"doc\":...,\"patch\":[...]} from standard input.")
    var jsonl = false

    @Flag(help: "Indent the result (not with --jsonl).")
    var pretty = false

    @Option(help: "Deepest nesting of arrays and objects accepted in input.")
    var maxDepth = 256

    @Option(help: "Largest document (or JSON line) accepted, in bytes.")
    var maxBytes = 64 << 20

    func validate() throws {
        if jsonl {
            guard doc == nil, patch == nil else { throw ValidationError("--jsonl reads standard input; drop --doc and --patch") }
            guard !pretty else { throw ValidationError("--pretty does not apply to --jsonl: each result is one line") }
        } else {
            guard doc != nil, patch != nil else { throw ValidationError("give --doc FILE and --patch FILE, or --jsonl") }
            guard !(doc == "-" && patch == "-") else { throw ValidationError("only one of --doc and --patch can be -") }
        }
        guard maxDepth >= 1, maxDepth <= JSONParser.Limits.depthCeiling else {
            throw ValidationError("--max-depth must be between 1 and \(JSONParser.Limits.depthCeiling)")
        }
        guard maxBytes >= 1 else { throw ValidationError("--max-bytes must be positive") }
    }

    func run() throws {
        let parser = JSONParser(limits: .init(maxDepth: maxDepth, maxBytes: maxBytes))
        if jsonl {
            runLines(parser: parser)
        } else {
            try runOnce(parser: parser)
        }
    }

    private func runOnce(parser: JSONParser) throws {
        let docBytes: [UInt8]
        let patchBytes: [UInt8]
        do {
            docBytes = try readInput(doc!)
            patchBytes = try readInput(patch!)
        } catch {
            fail(["error": .string("\(error)")])
        }
        let document: JSONValue
        do {
            document = try parser.parse(docBytes)
        } catch {
            fail(["error": .string("the document is not valid JSON: \(error)"), "offset": .integer(Int64(error.offset))])
        }
        do {
            let patch = try JSONPatch(parsing: patchBytes, parser: parser)
            let result = try patch.applied(to: document)
            var out = OutputBuffer()
            if pretty {
                out.bytes.append(contentsOf: result.prettyJSONText.utf8)
            } else {
                result.write(to: &out.bytes)
            }
            out.bytes.append(UInt8(ascii: "\n"))
            out.flush()
        } catch {
            fail(error.jsonValue)
        }
    }

    private func fail(_ error: JSONValue) -> Never {
        var bytes = error.serialized()
        bytes.append(UInt8(ascii: "\n"))
        FileHandle.standardError.write(Data(bytes))
        Foundation.exit(1)
    }

    private func runLines(parser: JSONParser) {
        var patcher = JSONLinesPatcher(parser: parser)
        var reader = LineReader()
        var out = OutputBuffer()
        reader.forEachLine { buffer, start, atEnd in
            let next = patcher.processLine(in: buffer, from: start, atEnd: atEnd, appendingTo: &out.bytes)
            out.flushIfFull()
            return next
        }
        out.flush()
    }
}
