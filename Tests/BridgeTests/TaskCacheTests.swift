//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
import TaskStatus
import TestFixtures
import Testing

@testable import Bridge

@Suite("The task cache")
struct TaskCacheTests {
    let record = TaskRecord(rev: 1, document: (try? TaskStatusSchema.validate(Fixtures.task("t"))) ?? .null)

    @Test("past its capacity it drops the least recently stored task, never one just stored")
    func evictsLeastRecentlyUsed() {
        var cache = TaskCache(capacity: 2)
        cache.store(record, for: "a")
        cache.store(record, for: "b")
        cache.remove("a")
        cache.store(record, for: "c")
        // "a" comes back: the copy removed before must not count as its place in line.
        cache.store(record, for: "a")
        #expect(cache["a"] != nil, "the task just stored was evicted by a stale copy of its id")
        #expect(cache["c"] != nil)
        #expect(cache["b"] == nil)
        #expect(cache.count == 2)
        // Storing a task again (every update does) keeps it: the other one goes first.
        cache.store(record, for: "c")
        cache.store(record, for: "d")
        #expect(cache["c"] != nil)
        #expect(cache["a"] == nil)
    }

    @Test("removing and storing the same tasks again and again keeps its bookkeeping bounded")
    func churnStaysBounded() {
        var cache = TaskCache(capacity: 4)
        for round in 0..<10_000 {
            let id = "t\(round % 8)"
            cache.store(record, for: id)
            cache.remove(id)
            cache.store(record, for: id)
        }
        #expect(cache.count == 4)
        #expect(cache.trackedCount <= 4, "the cache keeps \(cache.trackedCount) ids for 4 tasks")
    }

    @Test("a capacity of 0 holds nothing")
    func zeroCapacity() {
        var cache = TaskCache(capacity: 0)
        cache.store(record, for: "a")
        #expect(cache["a"] == nil)
        #expect(cache.count == 0)
    }
}
