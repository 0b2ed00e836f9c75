//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import PropertyBased
import Testing

@Suite("Properties of the JSON engine")
struct PropertyTests {
    @Test("serialise then parse gives the same value, and serialising again the same bytes")
    func roundTrip() async {
        await propertyCheck(count: 500, input: RandomJSON.documents) { value in
            let text = value.serialized()
            let parsed = try JSONParser().parse(text)
            #expect(parsed == value)
            #expect(parsed.serialized() == text)
            #expect(try JSONValue(parsing: value.prettyJSONText) == value)
        }
    }

    @Test("a patch either succeeds or leaves the document untouched")
    func atomicity() async {
        await propertyCheck(count: 500, input: RandomJSON.documentsAndPatches) { document, patchValue in
            let patch = try JSONPatch(patchValue)
            var work = document
            do {
                try patch.apply(to: &work)
            } catch let error as JSONPatchError {
                #expect(work == document)
                #expect(error.operationIndex != nil)
            }
        }
    }

    @Test("add then remove of a new member restores the document")
    func addRemoveInverse() async {
        await propertyCheck(count: 300, input: RandomJSON.documents) { value in
            let document: JSONValue = ["doc": value]
            let added = try JSONPatch(parsing: #"[{"op":"add","path":"/fresh","value":{"x":[1,2]}},{"op":"test","path":"/fresh/x/1","value":2.0}]"#)
                .applied(to: document)
            let restored = try JSONPatch(parsing: #"[{"op":"remove","path":"/fresh"}]"#).applied(to: added)
            #expect(restored == document)
            #expect(restored.serialized() == document.serialized())
        }
    }

    @Test("copy then test of the copy passes; move then move back restores")
    func copyAndMove() async {
        await propertyCheck(count: 300, input: RandomJSON.documents) { value in
            let document: JSONValue = ["a": value, "b": [:]]
            let copied = try JSONPatch(parsing: #"[{"op":"copy","from":"/a","path":"/b/c"}]"#).applied(to: document)
            _ = try JSONPatch([["op": "test", "path": "/b/c", "value": value]]).applied(to: copied)
            let moved = try JSONPatch(parsing: #"[{"op":"move","from":"/a","path":"/b/a"},{"op":"move","from":"/b/a","path":"/a"}]"#)
                .applied(to: document)
            #expect(moved == document)
        }
    }

    @Test("patching text gives byte for byte what patching the value gives")
    func textPathMatchesValuePath() async {
        await propertyCheck(count: 1000, input: RandomJSON.documentsAndPatches) { document, patchValue in
            let patch = try JSONPatch(patchValue)
            let expected = Result { () throws(JSONPatchError) -> [UInt8] in try patch.applied(to: document).serialized() }
            for text in [document.serialized(), Array(document.prettyJSONText.utf8)] {
                var out: [UInt8] = [0x2A]
                do {
                    try JSONTextPatcher().apply(patch, to: text, in: 0..<text.count, appendingTo: &out)
                    #expect(Array(out.dropFirst()) == (try? expected.get()))
                } catch let error as JSONTextPatcher.Failure {
                    #expect(out == [0x2A])
                    guard case .patchFailed(let textError) = error, case .failure(let valueError) = expected else {
                        Issue.record("only one path failed: \(error)")
                        continue
                    }
                    #expect(textError == valueError)
                }
            }
        }
    }

    @Test("the direct patch reader reads what the general reader reads, and declines the rest")
    func directPatchReader() async {
        await propertyCheck(count: 1000, input: RandomJSON.documentsAndPatches) { _, patchValue in
            var rng = SystemRandomNumberGenerator()
            var texts = [patchValue.serialized(), Array(patchValue.prettyJSONText.utf8)]
            var damaged = texts[0]
            for _ in 0..<Int.random(in: 1...3, using: &rng) where !damaged.isEmpty {
                let i = Int.random(in: 0..<damaged.count, using: &rng)
                damaged.insert(Array(#"{}[]",:\ "#.utf8).randomElement(using: &rng)!, at: i)
            }
            texts.append(damaged)
            for text in texts {
                for parser in [JSONParser(), JSONParser(limits: .init(maxDepth: Int.random(in: 1...4, using: &rng), maxBytes: 1 << 20))] {
                    let general = try? JSONPatch(parser.parse(text))
                    guard let direct = JSONPatch(readingPlain: text, parser: parser) else { continue }
                    #expect(direct == general, "\(String(decoding: text, as: UTF8.self))")
                }
            }
            // Valid patches in plain ASCII, without escapes or `~`, are always read directly.
            let plain = patchValue.serialized()
            if plain.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") && $0 != UInt8(ascii: "~") }),
                (try? JSONPatch(patchValue)) != nil,
                case .array(let operations) = patchValue,
                operations.allSatisfy({ $0.objectValue.map { Set($0.keys).count == $0.count } ?? false })
            {
                #expect(JSONPatch(readingPlain: plain) != nil, "\(String(decoding: plain, as: UTF8.self))")
            }
        }
    }

    @Test("damaged text is refused by the scanner and the parser alike, never a crash")
    func damagedText() async {
        await propertyCheck(count: 1000, input: RandomJSON.documents) { value in
            var text = value.serialized()
            guard !text.isEmpty else { return }
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<Int.random(in: 1...3, using: &rng) where !text.isEmpty {
                let i = Int.random(in: 0..<text.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: text[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: text.remove(at: i)
                default: text.insert(Array(#"{}[]",:\ "#.utf8).randomElement(using: &rng)!, at: i)
                }
            }
            let patch = try JSONPatch(parsing: "[]")
            var out: [UInt8] = []
            let parsed = try? JSONParser().parse(text)
            do {
                try JSONTextPatcher().apply(patch, to: text, in: 0..<text.count, appendingTo: &out)
                #expect(out == parsed?.serialized())
            } catch {
                #expect(parsed == nil)
            }
        }
    }
}
