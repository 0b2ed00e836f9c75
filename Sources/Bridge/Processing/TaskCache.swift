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
/// update. Bounded: past `capacity` the least recently stored task goes. The bookkeeping is a list
/// threaded through a slot array (slots of removed tasks are reused), so that it holds exactly the
/// tasks it caches, however often they are removed and stored again.
struct TaskCache {
    let capacity: Int
    private var slotOf: [String: Int] = [:]
    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    /// The most and the least recently used slots (-1 when empty).
    private var newest = -1
    private var oldest = -1

    private struct Slot {
        var id: String
        /// `nil` in a free slot.
        var record: TaskRecord?
        var newer = -1
        var older = -1
    }

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    var count: Int { slotOf.count }

    /// The ids the cache keeps bookkeeping for (for tests: never more than ``count``).
    var trackedCount: Int { slots.count - freeSlots.count }

    /// The cached task. Reading does not reorder: every update stores its task again after the
    /// commit, which makes it the most recently used, at half the bookkeeping.
    subscript(id: String) -> TaskRecord? {
        guard let slot = slotOf[id] else { return nil }
        return slots[slot].record
    }

    mutating func store(_ record: TaskRecord, for id: String) {
        guard capacity > 0 else { return }
        if let slot = slotOf[id] {
            slots[slot].record = record
            moveToNewest(slot)
            return
        }
        if slotOf.count >= capacity, oldest >= 0 { remove(slots[oldest].id) }
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
            slots[slot] = Slot(id: id, record: record)
        } else {
            slot = slots.count
            slots.append(Slot(id: id, record: record))
        }
        slotOf[id] = slot
        link(slot)
    }

    mutating func remove(_ id: String) {
        guard let slot = slotOf.removeValue(forKey: id) else { return }
        unlink(slot)
        // Drop the record now; the slot keeps only its place in the array.
        slots[slot] = Slot(id: "", record: nil)
        freeSlots.append(slot)
    }

    mutating func removeAll() {
        slotOf.removeAll()
        slots.removeAll()
        freeSlots.removeAll()
        newest = -1
        oldest = -1
    }

    private mutating func moveToNewest(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        link(slot)
    }

    /// Puts the slot at the newest end.
    private mutating func link(_ slot: Int) {
        slots[slot].newer = -1
        slots[slot].older = newest
        if newest >= 0 { slots[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }

    private mutating func unlink(_ slot: Int) {
        let (newer, older) = (slots[slot].newer, slots[slot].older)
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        slots[slot].newer = -1
        slots[slot].older = -1
    }
}
