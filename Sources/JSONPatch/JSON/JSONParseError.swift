//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Why a text is not acceptable JSON, and where: `offset` counts bytes from the start of the input.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure; new kinds may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String {
            case unexpectedEnd = "unexpected end"
            case unexpectedCharacter = "unexpected character"
            case invalidNumber = "invalid number"
            case invalidString = "invalid string"
            case invalidUTF8 = "invalid UTF-8"
            case tooDeep = "too deep"
            case tooLarge = "too large"
            case trailingCharacters = "trailing characters"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The input ended in the middle of a value.
        public static let unexpectedEnd = Code(.unexpectedEnd)
        /// A byte that cannot start or continue a value here.
        public static let unexpectedCharacter = Code(.unexpectedCharacter)
        /// A number that breaks RFC 8259's grammar (leading zero, missing digits, `+1`, `.5`, ...).
        public static let invalidNumber = Code(.invalidNumber)
        /// A bad escape, an unescaped control character, or a lone UTF-16 surrogate.
        public static let invalidString = Code(.invalidString)
        /// Bytes that are not UTF-8.
        public static let invalidUTF8 = Code(.invalidUTF8)
        /// Arrays and objects nested deeper than the parser's limit.
        public static let tooDeep = Code(.tooDeep)
        /// An input longer than the parser's limit.
        public static let tooLarge = Code(.tooLarge)
        /// Something other than white space after the value.
        public static let trailingCharacters = Code(.trailingCharacters)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// Byte offset of the failure, from the start of the input.
    public let offset: Int
    /// What went wrong, in words.
    public let message: String

    public init(code: Code, offset: Int, message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}
