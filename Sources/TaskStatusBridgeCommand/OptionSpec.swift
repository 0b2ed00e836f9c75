//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Foundation

/// One setting of the command line, written once: its flag, its environment variable, its
/// default, what it means, and how its text is read. The `--help` text, the resolution (flag,
/// else variable, else default) and the tables of docs/configuration.md all come from here; a
/// test holds the docs to it.
struct OptionSpec<Value: Sendable>: DocumentedOption, Sendable {
    let flag: String
    let variable: String
    let section: OptionSection
    /// The default as the docs and the help show it (markdown; backticks are dropped for the help).
    let defaultText: String
    /// What the setting means (markdown, as the docs show it).
    let meaning: String
    /// The default; `nil` when it depends on other settings (given to ``resolve(_:default:)``).
    let defaultValue: Value?
    /// Reads a given value; throws why it is not valid (a phrase to follow the value).
    let read: @Sendable (String) throws(InvalidValue) -> Value

    struct InvalidValue: Error {
        let reason: String
    }

    /// The help text: what it means, its variable and its default (markdown's backticks kept:
    /// stripping them costs start-up time for every option, and they read fine in a terminal).
    var help: ArgumentHelp {
        ArgumentHelp("\(meaning) (env \(variable); default \(defaultText)).")
    }

    /// The value from the flag, else the variable, else the default; a bad value stops the start
    /// with a message naming both the flag and the variable.
    func resolve(_ given: String?) throws -> Value {
        guard let defaultValue else { preconditionFailure("\(flag) has no fixed default: call resolve(_:default:)") }
        return try resolve(given, default: defaultValue)
    }

    func resolve(_ given: String?, default fallback: @autoclosure () -> Value) throws -> Value {
        try resolveIfGiven(given) ?? fallback()
    }

    /// Whether the flag or the variable gives a value.
    func isGiven(_ given: String?) -> Bool { Setting(flag, variable, given).value != nil }

    /// The value from the flag, else the variable; `nil` when neither gives one (a setting
    /// without a default: a file, a name).
    func resolveIfGiven(_ given: String?) throws -> Value? {
        let setting = Setting(flag, variable, given)
        guard let text = setting.value else { return nil }
        do {
            return try read(text)
        } catch {
            throw ValidationError("invalid \(flag) (environment \(variable)): \"\(text)\" \(error.reason)")
        }
    }
}

/// A setting as the docs list it.
protocol DocumentedOption: Sendable {
    var flag: String { get }
    var variable: String { get }
    var section: OptionSection { get }
    var defaultText: String { get }
    var meaning: String { get }
}

extension DocumentedOption {
    /// Its row in docs/configuration.md.
    var markdownRow: String { "| `\(flag)` | `\(variable)` | \(defaultText) | \(meaning) |" }
}

/// The tables of docs/configuration.md, in order.
enum OptionSection: String, CaseIterable {
    case redis = "Redis and naming"
    case redisConnections = "Redis connections: TLS and timeouts"
    case consumer = "The consumer loop"
    case requests = "What requests may do"
    case http = "HTTP"
    case authentication = "Authentication"
    case rateLimits = "Rate limits"

    /// The section's table, as docs/configuration.md must hold it.
    func markdownTable(_ options: [any DocumentedOption]) -> String {
        let rows = options.filter { $0.section == self }.map(\.markdownRow)
        return (["| flag | variable | default | meaning |", "|---|---|---|---|"] + rows).joined(separator: "\n")
    }
}

extension OptionSpec {
    /// A setting whose default the docs show as `format` writes it (or as `defaultText`, for a
    /// default that depends on other settings or reads better in words; "none" without either).
    init(
        _ flag: String,
        _ variable: String,
        _ section: OptionSection,
        default value: Value?,
        defaultText: String?,
        format: (Value) -> String,
        _ meaning: String,
        read: @escaping @Sendable (String) throws(InvalidValue) -> Value
    ) {
        self.init(
            flag: flag,
            variable: variable,
            section: section,
            defaultText: defaultText ?? value.map(format) ?? "none",
            meaning: meaning,
            defaultValue: value,
            read: read
        )
    }
}

/// A default as the docs write a literal: in backticks.
private func code(_ value: some CustomStringConvertible) -> String { "`\(value)`" }

@Sendable private func readText(_ text: String) throws(OptionSpec<String>.InvalidValue) -> String { text }

@Sendable private func readBool(_ text: String) throws(OptionSpec<Bool>.InvalidValue) -> Bool {
    switch text.lowercased() {
    case "1", "true", "yes", "on": return true
    case "0", "false", "no", "off": return false
    default: throw OptionSpec<Bool>.InvalidValue(reason: "is not true or false")
    }
}

extension OptionSpec where Value == Int {
    /// An integer within `range`.
    static func integer(
        _ flag: String,
        _ variable: String,
        _ section: OptionSection,
        default value: Int?,
        defaultText: String? = nil,
        in range: ClosedRange<Int>,
        _ meaning: String
    ) -> OptionSpec {
        let read: @Sendable (String) throws(InvalidValue) -> Int = { text throws(InvalidValue) in
            guard let n = Int(text.trimmingCharacters(in: .whitespaces)) else { throw InvalidValue(reason: "is not an integer") }
            guard range.contains(n) else { throw InvalidValue(reason: "is not between \(range.lowerBound) and \(range.upperBound)") }
            return n
        }
        return OptionSpec(flag, variable, section, default: value, defaultText: defaultText, format: String.init, meaning, read: read)
    }
}

extension OptionSpec where Value == Bool {
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    static func boolean(
        _ flag: String,
        _ variable: String,
        _ section: OptionSection,
        default value: Bool?,
        defaultText: String? = nil,
        _ meaning: String
    ) -> OptionSpec {
        OptionSpec(flag, variable, section, default: value, defaultText: defaultText, format: code, meaning, read: readBool)
    }
}

extension OptionSpec where Value == String {
    /// Any text.
    static func text(
        _ flag: String,
        _ variable: String,
        _ section: OptionSection,
        default value: String?,
        defaultText: String? = nil,
        _ meaning: String
    ) -> OptionSpec {
        OptionSpec(flag, variable, section, default: value, defaultText: defaultText, format: code, meaning, read: readText)
    }
}
