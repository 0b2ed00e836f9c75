//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// The top-level properties of a TaskStatus, in the order SailPoint's schema lists them (and the
/// bridge writes them). Each one is one field of the task's Redis hash.
public enum TaskProperty: String, CaseIterable, Sendable, Hashable {
    case id
    case type
    case uniqueName
    case description
    case parentName
    case launcher
    case target
    case created
    case modified
    case launched
    case completed
    case completionStatus
    case messages
    case returns
    case attributes
    case progress
    case percentComplete
    case taskDefinitionSummary

    /// How a property's value is encoded in its hash field.
    public enum Kind: Sendable {
        /// The string itself.
        case string
        /// RFC 3339 text, as given.
        case dateTime
        /// Decimal text.
        case integer
        /// Compact JSON of an object.
        case object
        /// Compact JSON of an array.
        case array
    }

    public var kind: Kind {
        switch self {
        case .created, .modified, .launched, .completed: return .dateTime
        case .percentComplete: return .integer
        case .target, .attributes, .taskDefinitionSummary: return .object
        case .messages, .returns: return .array
        default: return .string
        }
    }

    /// Whether the property must be in every TaskStatus (possibly as `null` when nullable).
    public var isRequired: Bool {
        self != .target && self != .taskDefinitionSummary
    }

    /// Whether the property may be `null` (stored as an absent hash field).
    public var isNullable: Bool {
        switch self {
        // SailPoint's schema made `modified` nullable in 2026.
        case .parentName, .modified, .launched, .completed, .completionStatus, .progress, .target, .taskDefinitionSummary: return true
        default: return false
        }
    }

    /// The allowed values of an enum property, in their canonical (upper) case.
    public var allowedValues: [String]? {
        switch self {
        case .type: return ["QUARTZ", "QPOC", "QUEUED_TASK"]
        case .completionStatus: return ["SUCCESS", "WARNING", "ERROR", "TERMINATED", "TEMPERROR"]
        default: return nil
        }
    }

    /// The property's position in ``allCases``.
    public var index: Int {
        switch self {
        case .id: return 0
        case .type: return 1
        case .uniqueName: return 2
        case .description: return 3
        case .parentName: return 4
        case .launcher: return 5
        case .target: return 6
        case .created: return 7
        case .modified: return 8
        case .launched: return 9
        case .completed: return 10
        case .completionStatus: return 11
        case .messages: return 12
        case .returns: return 13
        case .attributes: return 14
        case .progress: return 15
        case .percentComplete: return 16
        case .taskDefinitionSummary: return 17
        }
    }

    /// The property named `name`, if the schema has one.
    public init?(name: String) {
        // Called for every member a patch touches: compare lengths first, then bytes, instead of
        // the string switch of `init(rawValue:)`.
        let count = name.utf8.count
        guard count < Self.byLength.count else { return nil }
        for (property, bytes) in Self.byLength[count] where name.utf8.elementsEqual(bytes) {
            self = property
            return
        }
        return nil
    }

    /// The properties by the length of their names, each with its name's bytes.
    private static let byLength: [[(TaskProperty, [UInt8])]] = {
        var table = [[(TaskProperty, [UInt8])]](repeating: [], count: 1 + allCases.map(\.rawValue.utf8.count).max()!)
        for property in allCases { table[property.rawValue.utf8.count].append((property, Array(property.rawValue.utf8))) }
        return table
    }()

    /// Whether the property is one of the task's small properties that updates change, which
    /// notifications, the change feed and stored replies carry (`summary`): its status, progress
    /// and times. Not the ones set once at creation (name, type, launcher, target...), which a
    /// watcher has from the task, and not the collections, which grow with the task's life.
    public var isInSummary: Bool {
        switch self {
        case .completionStatus, .percentComplete, .progress, .created, .modified, .launched, .completed: return true
        default: return false
        }
    }

    /// The properties that can never change after creation.
    public static let immutable: Set<TaskProperty> = [.id, .created]

    /// ``immutable`` as a ``TaskPropertySet``.
    public static let immutableSet = TaskPropertySet(immutable)

    /// The name of the bookkeeping field that holds the revision.
    public static let revisionField = "_rev"
}
