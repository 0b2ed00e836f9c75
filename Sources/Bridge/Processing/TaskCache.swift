//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import TaskStatus

/// Recently used tasks, so that an update need not read its task first.
///
/// Entries may be stale (another bridge or service wrote since): every commit checks `_rev` on the
/// server and a mismatch hands back the current hash, so staleness costs a retry, never a lost
/// update. Bounded: past `capacity` the oldest entries go first.
struct TaskCache {
    let capacity: Int
    private var records: [String: TaskRecord] = [:]
    private var order: [String] = []
    private var orderStart = 0

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    var count: Int { records.count }

    subscript(id: String) -> TaskRecord? {
        records[id]
    }

    mutating func store(_ record: TaskRecord, for id: String) {
        guard capacity > 0 else { return }
        if records.updateValue(record, forKey: id) == nil {
            order.append(id)
            while records.count > capacity, orderStart < order.count {
                records[order[orderStart]] = nil
                orderStart += 1
            }
            // The order list only grows at the end; drop its consumed head now and then.
            if orderStart > capacity {
                order.removeFirst(orderStart)
                orderStart = 0
            }
        }
    }

    mutating func remove(_ id: String) {
        records[id] = nil
    }

    mutating func removeAll() {
        records.removeAll()
        order.removeAll()
        orderStart = 0
    }
}
