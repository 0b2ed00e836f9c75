//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import JSONPatch
public import TaskStatus

/// A `GET /task-status` (SailPoint's getTaskStatusList) as the bridge runs it: paging, the sort,
/// and the filters, each constraint reduced to the set of values a task's property may take.
public struct ListQuery: Sendable, Equatable {
    /// Most tasks answered, 0 to 250.
    public var limit = 250
    /// Tasks skipped first.
    public var offset = 0
    /// Whether the answer carries the total in `X-Total-Count`.
    public var count = false
    /// Newest first (`-created`, the default) or oldest first (`created`); ties by id, in the same direction.
    public var newestFirst = true
    /// Allowed task ids (`id eq/in`); `nil`: any.
    public var ids: [String]?
    /// Allowed completion statuses, as stored, ``TaskIndexEntry/notCompleted`` for null; `nil`: any.
    public var statuses: Set<String>?
    /// Allowed `type` values (stored upper case); `nil`: any.
    public var types: Set<String>?
    /// Allowed `launcher` values; `nil`: any.
    public var launchers: Set<String>?
    /// Allowed `target.id` values (`sourceId`); `nil`: any.
    public var sourceIds: Set<String>?

    public init() {}

    public static let maxLimit = 250

    /// Whether a filter needs each task's properties, beyond what the index holds.
    var readsProperties: Bool { types != nil || launchers != nil || sourceIds != nil }

    /// Whether `record` passes every filter.
    func admits(_ record: TaskRecord) -> Bool {
        func text(_ property: TaskProperty) -> String? { record.field(property).map { String(decoding: $0, as: UTF8.self) } }
        if let ids, let id = text(.id), !ids.contains(id) { return false }
        if let statuses, !statuses.contains(text(.completionStatus) ?? TaskIndexEntry.notCompleted) { return false }
        if let types, !types.contains(text(.type) ?? "") { return false }
        if let launchers, !launchers.contains(text(.launcher) ?? "") { return false }
        if let sourceIds {
            guard let target = record.valueText(.target), case .object(let object)? = try? JSONParser.accepted.parse(Array(target)),
                let id = object["id"]?.stringValue, sourceIds.contains(id)
            else { return false }
        }
        return true
    }

    /// A query parameter the API refuses, with the cause the 400 gives.
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Reads the query parameters (`limit`, `offset`, `count`, `sorters`, `filters`); others are
    /// ignored, as SailPoint's API ignores them.
    public init(parameters: [(name: String, value: String)]) throws(Invalid) {
        for (name, value) in parameters {
            switch name {
            case "limit":
                guard let n = Int(value), (0...Self.maxLimit).contains(n) else {
                    throw Invalid(description: "limit must be an integer from 0 to \(Self.maxLimit), not \(value)")
                }
                limit = n
            case "offset":
                guard let n = Int(value), n >= 0 else { throw Invalid(description: "offset must be an integer of 0 or more, not \(value)") }
                offset = n
            case "count":
                switch value.lowercased() {
                case "true": count = true
                case "false": count = false
                default: throw Invalid(description: "count must be true or false, not \(value)")
                }
            case "sorters":
                switch Substring(value).trimmingSpaces {
                case "created": newestFirst = false
                case "-created": newestFirst = true
                default: throw Invalid(description: "sorters must be created or -created, not \(value)")
                }
            case "filters":
                try applyFilters(value)
            default:
                continue
            }
        }
    }

    /// The parameters of a URL's query as HTML forms and most HTTP clients write them: `+` is a
    /// space (Python's `urlencode` and the browser's `URLSearchParams` send `filters=id+eq+"x"`),
    /// `%XX` a byte. A parameter that is not valid percent-encoding keeps its text as sent.
    public static func parameters(fromQuery query: Substring) -> [(name: String, value: String)] {
        query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    /// SailPoint's filter grammar, the part this list supports: `field op value` terms joined by
    /// `and`, where op is `eq` (a quoted string), `in` (a parenthesised, comma-separated list of
    /// them) or `isnull` (no value; `completionStatus` only).
    mutating func applyFilters(_ text: String) throws(Invalid) {
        var tokens = try FilterTokens(text)
        repeat {
            guard case .word(let field)? = tokens.next() else { throw Invalid(description: "filters: expected a field name at \(tokens.at)") }
            guard case .word(let op)? = tokens.next() else { throw Invalid(description: "filters: expected an operator after \(field)") }
            var values: [String]
            switch op {
            case "eq":
                guard case .string(let value)? = tokens.next() else {
                    throw Invalid(description: "filters: \(field) eq takes a quoted string")
                }
                values = [value]
            case "in":
                values = []
                guard tokens.next() == .open else { throw Invalid(description: "filters: \(field) in takes a list such as (\"a\",\"b\")") }
                while true {
                    guard case .string(let value)? = tokens.next() else {
                        throw Invalid(description: "filters: \(field) in takes quoted strings")
                    }
                    values.append(value)
                    let after = tokens.next()
                    if after == .close { break }
                    guard after == .comma else { throw Invalid(description: "filters: expected , or ) in the list of \(field)") }
                }
                guard values.count <= 250 else { throw Invalid(description: "filters: \(field) in takes at most 250 values") }
            case "isnull":
                guard field == "completionStatus" else { throw Invalid(description: "filters: \(field) does not support isnull") }
                values = []
            default:
                throw Invalid(description: "filters: the operator \(op) is not supported (eq, in, and isnull for completionStatus)")
            }
            try constrain(field, to: values, isNull: op == "isnull")
            guard let next = tokens.next() else { return }
            guard next == .word("and") else { throw Invalid(description: "filters: terms are joined by and, not \(next)") }
        } while true
    }

    private mutating func constrain(_ field: String, to values: [String], isNull: Bool) throws(Invalid) {
        func narrow(_ current: Set<String>?, _ new: [String]) -> Set<String> {
            current.map { $0.intersection(new) } ?? Set(new)
        }
        switch field {
        case "id":
            ids = ids.map { old in values.filter { old.contains($0) } } ?? values
        case "sourceId":
            sourceIds = narrow(sourceIds, values)
        case "completionStatus":
            let allowed = TaskProperty.completionStatus.allowedValues!
            var wanted: [String] = []
            if isNull { wanted.append(TaskIndexEntry.notCompleted) }
            for value in values {
                guard allowed.contains(value.uppercased()) else {
                    throw Invalid(description: "filters: completionStatus must be one of \(allowed.joined(separator: ", ")), not \(value)")
                }
                wanted.append(value.uppercased())
            }
            statuses = narrow(statuses, wanted)
        case "type":
            types = narrow(types, values.map { $0.uppercased() })
        case "launcher":
            launchers = narrow(launchers, values)
        default:
            throw Invalid(
                description: "filters: \(field) is not a field this list filters on (id, sourceId, completionStatus, type, launcher)"
            )
        }
    }
}

/// The tokens of a filter expression.
private struct FilterTokens {
    enum Token: Equatable, CustomStringConvertible {
        case word(String)
        case string(String)
        case open, close, comma

        var description: String {
            switch self {
            case .word(let w): return w
            case .string(let s): return "\"\(s)\""
            case .open: return "("
            case .close: return ")"
            case .comma: return ","
            }
        }
    }

    private var tokens: [Token] = []
    private var position = 0
    /// Where the next token is, for errors.
    var at: String { position < tokens.count ? "\(tokens[position])" : "the end" }

    init(_ text: String) throws(ListQuery.Invalid) {
        let chars = Array(text.unicodeScalars)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == " " || c == "\t" {
                i += 1
            } else if c == "(" {
                tokens.append(.open)
                i += 1
            } else if c == ")" {
                tokens.append(.close)
                i += 1
            } else if c == "," {
                tokens.append(.comma)
                i += 1
            } else if c == "\"" {
                var value = String.UnicodeScalarView()
                i += 1
                var closed = false
                while i < chars.count {
                    if chars[i] == "\\", i + 1 < chars.count {
                        value.append(chars[i + 1])
                        i += 2
                    } else if chars[i] == "\"" {
                        closed = true
                        i += 1
                        break
                    } else {
                        value.append(chars[i])
                        i += 1
                    }
                }
                guard closed else { throw ListQuery.Invalid(description: "filters: a string is not closed with \"") }
                tokens.append(.string(String(value)))
            } else if c.properties.isAlphabetic || c == "_" {
                var word = String.UnicodeScalarView()
                while i < chars.count, chars[i].properties.isAlphabetic || chars[i] == "_" || ("0"..."9").contains(chars[i]) {
                    word.append(chars[i])
                    i += 1
                }
                tokens.append(.word(String(word)))
            } else {
                throw ListQuery.Invalid(description: "filters: unexpected character \(c) (strings are quoted with \")")
            }
        }
        guard !tokens.isEmpty else { throw ListQuery.Invalid(description: "filters is empty") }
    }

    mutating func next() -> Token? {
        guard position < tokens.count else { return nil }
        defer { position += 1 }
        return tokens[position]
    }
}
