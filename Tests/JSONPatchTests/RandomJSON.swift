//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import PropertyBased

/// Random JSON documents and patches for the property tests.
enum RandomJSON {
    static let keys = ["a", "b", "c", "id", "x~y", "s/t", "", "é", "messages", "k\"q"]

    static func string<R: RandomNumberGenerator>(_ rng: inout R) -> String {
        let pieces = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{01}", "\u{1F}", "é", "€", "😀", "\u{7F}", "~", "ascii text "]
        return (0..<Int.random(in: 0...6, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    static func number<R: RandomNumberGenerator>(_ rng: inout R) -> JSONValue {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: return .integer(Int64.random(in: .min ... .max, using: &rng))
        case 1: return .integer(Int64.random(in: -100...100, using: &rng))
        case 2: return .number(JSONNumber(["0.5", "-0", "1E400", "123456789012345678901234567890", "-2.5e-3", "1.0"].randomElement(using: &rng)!)!)
        default: return .integer(Int64.random(in: 0...9, using: &rng))
        }
    }

    static func value<R: RandomNumberGenerator>(_ rng: inout R, depth: Int = 3) -> JSONValue {
        let choice = Int.random(in: 0..<(depth > 0 ? 8 : 5), using: &rng)
        switch choice {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return number(&rng)
        case 3, 4: return .string(string(&rng))
        case 5: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in value(&rng, depth: depth - 1) })
        default:
            var object = JSONObject()
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                object[keys.randomElement(using: &rng)!] = value(&rng, depth: depth - 1)
            }
            return .object(object)
        }
    }

    /// Pointers to existing locations (and sometimes to missing ones).
    static func pointer<R: RandomNumberGenerator>(in document: JSONValue, _ rng: inout R, forAdd: Bool = false) -> String {
        var tokens: [String] = []
        var current = document
        while Int.random(in: 0..<4, using: &rng) != 0 {
            switch current {
            case .object(let object) where !object.isEmpty:
                let member = object[Int.random(in: 0..<object.count, using: &rng)]
                tokens.append(member.key)
                current = member.value
                continue
            case .array(let array) where !array.isEmpty:
                let i = Int.random(in: 0..<array.count, using: &rng)
                tokens.append(String(i))
                current = array[i]
                continue
            default:
                break
            }
            break
        }
        if forAdd || Int.random(in: 0..<8, using: &rng) == 0 {
            switch current {
            case .array(let array): tokens.append(Bool.random(using: &rng) ? "-" : String(Int.random(in: 0...array.count + 1, using: &rng)))
            default: tokens.append(keys.randomElement(using: &rng)!)
            }
        }
        return JSONPointer(tokens: tokens).description
    }

    static func patch<R: RandomNumberGenerator>(for document: JSONValue, _ rng: inout R) -> JSONValue {
        var operations: [JSONValue] = []
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            var op = JSONObject()
            switch Int.random(in: 0..<6, using: &rng) {
            case 0:
                op["op"] = "add"
                op["path"] = .string(pointer(in: document, &rng, forAdd: true))
                op["value"] = value(&rng, depth: 2)
            case 1:
                op["op"] = "remove"
                op["path"] = .string(pointer(in: document, &rng))
            case 2:
                op["op"] = "replace"
                op["path"] = .string(pointer(in: document, &rng))
                op["value"] = value(&rng, depth: 2)
            case 3:
                op["op"] = Bool.random(using: &rng) ? "move" : "copy"
                op["from"] = .string(pointer(in: document, &rng))
                op["path"] = .string(pointer(in: document, &rng, forAdd: true))
            default:
                op["op"] = "test"
                let path = pointer(in: document, &rng)
                op["path"] = .string(path)
                let target = (try? JSONPointer(path))?.evaluate(in: document)
                op["value"] = Bool.random(using: &rng) ? (target ?? .null) : value(&rng, depth: 1)
            }
            operations.append(.object(op))
        }
        return .array(operations)
    }

    static var documents: Generator<JSONValue, Shrink.None<JSONValue>> {
        Generator { rng in value(&rng, depth: 4) }
    }

    /// A document and a patch aimed at its locations.
    static var documentsAndPatches: Generator<(JSONValue, JSONValue), Shrink.None<(JSONValue, JSONValue)>> {
        Generator { rng in
            var document = JSONValue.object(JSONObject())
            if case .object = value(&rng, depth: 0) {} else { document = value(&rng, depth: 4) }
            if case .object = document {} else { document = ["root": document, "list": [1, 2, 3]] }
            return (document, patch(for: document, &rng))
        }
    }
}
