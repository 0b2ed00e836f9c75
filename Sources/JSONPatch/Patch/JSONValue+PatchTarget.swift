//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

extension JSONValue: PatchTarget {
    static func node(_ value: JSONValue) -> JSONValue { value }

    func jsonValue(of node: JSONValue) -> JSONValue { node }

    func node(at pointer: JSONPointer) throws(Failure) -> JSONValue {
        do {
            return try pointer.resolve(in: self)
        } catch {
            throw Failure(pointerError: error)
        }
    }

    mutating func add(_ value: JSONValue, at pointer: JSONPointer) throws(Failure) {
        guard let last = pointer.tokens.last else {
            self = value
            return
        }
        try modifyContainer(pointer, depth: 0) { (container: inout JSONValue) throws(Failure) in
            switch container {
            case .object(var object):
                container = .null
                object[last] = value
                container = .object(object)
            case .array(var array):
                let index = try pointer.lastIndex(in: array.count, allowEnd: true)
                container = .null
                array.insert(value, at: index)
                container = .array(array)
            default:
                throw Failure(.invalidTarget, pointer.notAContainer(typeName: container.typeName, at: pointer.tokens.count - 1))
            }
        }
    }

    mutating func remove(at pointer: JSONPointer) throws(Failure) -> JSONValue {
        guard let last = pointer.tokens.last else { throw Failure.removeRoot }
        return try modifyContainer(pointer, depth: 0) { (container: inout JSONValue) throws(Failure) -> JSONValue in
            switch container {
            case .object(var object):
                guard let i = object.index(forKey: last) else { throw pointer.missingLastMember() }
                container = .null
                let removed = object.members.remove(at: i).value
                container = .object(object)
                return removed
            case .array(var array):
                let index = try pointer.lastIndex(in: array.count, allowEnd: false)
                container = .null
                let removed = array.remove(at: index)
                container = .array(array)
                return removed
            default:
                throw Failure(.invalidTarget, pointer.notAContainer(typeName: container.typeName, at: pointer.tokens.count - 1))
            }
        }
    }

    mutating func replace(at pointer: JSONPointer, with value: JSONValue) throws(Failure) {
        guard let last = pointer.tokens.last else {
            self = value
            return
        }
        try modifyContainer(pointer, depth: 0) { (container: inout JSONValue) throws(Failure) in
            switch container {
            case .object(var object):
                guard let i = object.index(forKey: last) else { throw pointer.missingLastMember() }
                container = .null
                object.members[i].value = value
                container = .object(object)
            case .array(var array):
                let index = try pointer.lastIndex(in: array.count, allowEnd: false)
                container = .null
                array[index] = value
                container = .array(array)
            default:
                throw Failure(.invalidTarget, pointer.notAContainer(typeName: container.typeName, at: pointer.tokens.count - 1))
            }
        }
    }

    /// Walks to the parent of `pointer`'s last token and hands it to `body` for in-place editing.
    ///
    /// Each level moves its container out of `self` (leaving `.null` behind) before recursing, so
    /// that the container stays uniquely referenced and the edit does not copy it.
    mutating func modifyContainer<R>(
        _ pointer: JSONPointer,
        depth: Int,
        _ body: (inout JSONValue) throws(Failure) -> R
    ) throws(Failure) -> R {
        if depth == pointer.tokens.count - 1 { return try body(&self) }
        let token = pointer.tokens[depth]
        switch self {
        case .object(var object):
            guard let i = object.index(forKey: token) else {
                throw Failure(.pathNotFound, pointer.missingMember(token, at: depth))
            }
            self = .null
            defer { self = .object(object) }
            return try object.members[i].value.modifyContainer(pointer, depth: depth + 1, body)
        case .array(var array):
            let index = try pointer.existingIndex(at: depth, count: array.count)
            self = .null
            defer { self = .array(array) }
            return try array[index].modifyContainer(pointer, depth: depth + 1, body)
        default:
            throw Failure(.invalidTarget, pointer.notAContainer(typeName: typeName, at: depth))
        }
    }
}
