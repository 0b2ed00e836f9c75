//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import JSONPatch
import Testing

/// The public json-patch-tests suite (Apache-2.0), read from outside the repository: from
/// `$JSON_PATCH_TESTS`, else from `../shared/conformance/json-patch-tests` next to the package.
enum ConformanceSuite {
    struct Case: Sendable, CustomTestStringConvertible {
        let file: String
        let index: Int
        let record: JSONValue

        var comment: String { record["comment"]?.stringValue ?? "" }
        var testDescription: String { "\(file)#\(index) \(comment)" }
    }

    static let directory: URL = {
        if let override = ProcessInfo.processInfo.environment["JSON_PATCH_TESTS"] {
            return URL(fileURLWithPath: override)
        }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("../shared/conformance/json-patch-tests").standardized
    }()

    static let files = ["tests.json", "spec_tests.json"]

    static var isPresent: Bool {
        files.allSatisfy { FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) }
    }

    /// Every enabled case of both files.
    static let cases: [Case] = {
        guard isPresent else {
            print("json-patch-tests not found at \(directory.path): conformance cases skipped (set JSON_PATCH_TESTS)")
            return []
        }
        var cases: [Case] = []
        for file in files {
            let bytes = [UInt8](FileManager.default.contents(atPath: directory.appendingPathComponent(file).path)!)
            guard case .array(let records) = try! JSONValue(parsing: bytes) else { continue }
            for (index, record) in records.enumerated() where record["disabled"] != .bool(true) {
                cases.append(Case(file: file, index: index, record: record))
            }
        }
        return cases
    }()
}

@Suite("json-patch-tests conformance", .enabled(if: ConformanceSuite.isPresent, "the json-patch-tests suite is not next to the package"))
struct ConformanceTests {
    @Test("all 108 enabled cases are found")
    func suiteIsComplete() {
        #expect(ConformanceSuite.cases.count == 108)
    }

    @Test("each enabled case passes, error cases included", arguments: ConformanceSuite.cases)
    func conformanceCase(_ testCase: ConformanceSuite.Case) throws {
        let record = testCase.record
        let document = try #require(record["doc"])
        let patchValue = try #require(record["patch"])
        let outcome: Result<JSONValue, any Error> = Result { try JSONPatch(patchValue).applied(to: document) }
        if record["error"] != nil {
            #expect(throws: JSONPatchError.self) { try outcome.get() }
        } else {
            let result = try outcome.get()
            if let expected = record["expected"] {
                #expect(result == expected)
            }
        }
        // The text path must give exactly what the value path gives.
        guard let patch = try? JSONPatch(patchValue) else { return }
        let docText = document.serialized()
        var out: [UInt8] = []
        do {
            try JSONTextPatcher().apply(patch, to: docText, in: 0..<docText.count, appendingTo: &out)
            #expect(String(decoding: out, as: UTF8.self) == (try? outcome.get())?.jsonText)
        } catch {
            #expect(throws: (any Error).self) { try outcome.get() }
        }
    }
}
